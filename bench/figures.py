"""The headline figures, taken from a run's raw results (medians over repeats, ratios).

The report and the targets both read figures from here, so a number is computed once.
"""

from __future__ import annotations

from typing import Any

from bench.stats import median, ratio

TARGET_P99_MS = 10.0
TARGET_RATE = "500/s"
TARGET_DRAIN_RATIO = 0.5
TARGET_BUDGET = 0.95
TARGET_CALLS_PER_1000 = 1_100
TARGET_LIVE_P99_MS = 5_000.0  # "applied within seconds of its own calls"
PROJECTED_FOLLOWERS = 100_000

# Fewest Capillary calls each scenario can take with the design's steps (the baseline for
# "calls per event"): a follow must set OPTIN whatever Capillary holds, so only the customer
# id is cached; a cold known user needs the lookup (whose embedded subscriptions can save the
# write when already right); a new user needs lookup, INSTORE, LINE and the subscription.
CALL_FLOOR = {"known_warm": 1, "known_cold": 2, "new": 4, "unfollow": 1}
SCENARIO_NAMES = {
    "known_warm": "known user, follow (customer id cached)",
    "known_cold": "known user, follow (not cached)",
    "new": "new user, follow",
    "unfollow": "unfollow (customer id cached)",
}


def open_point(batch: dict[str, Any], label: str) -> dict[str, Any] | None:
    """Medians over the repeats of one open-loop load point."""
    runs = batch.get("open", {}).get(label)
    if not runs:
        return None
    lat = [r["latency_ms"] for r in runs]
    return {
        "rate": batch["rates"][label],
        "throughput": median(r["throughput"] for r in runs),
        "p50": median(x.get("p50") for x in lat),
        "p99": median(x.get("p99") for x in lat),
        "p99_runs": [x.get("p99") for x in lat],
        "p99.9": median(x.get("p99.9") for x in lat),
        "max": max((x.get("max", 0.0) for x in lat), default=None),
        "samples": sum(x.get("count", 0) for x in lat),
        "repeats": len(runs),
        "errors": sum(r["errors"] + sum(n for s, n in r["statuses"].items() if s != "200")
                      for r in runs),
        "other_cores": max(r["cpu"]["other_cores"] for r in runs),
        "busy_cores": median(r["cpu"]["busy_cores"] for r in runs),
        "web_cores": median(r["cpu_by_process"]["web"] for r in runs),
        "web_cpu_ms": median(r.get("web_cpu_ms_per_request") for r in runs),
    }


def receiver(results: dict[str, Any]) -> dict[str, Any]:
    part = results["parts"].get("receiver")
    if not part:
        return {}
    out: dict[str, Any] = {}
    for batch in part["linecap"]["batches"]:
        lc, bl = part["linecap"]["batches"][batch], part["baseline"]["batches"][batch]
        points = {}
        for label in lc["rates"]:
            mine, theirs = open_point(lc, label), open_point(bl, label)
            points[label] = {"linecap": mine, "baseline": theirs,
                             "p99_ratio": ratio(mine and mine["p99"], theirs and theirs["p99"])}
        ceiling = part.get("ceiling", {}).get("batches", {}).get(batch, {}).get("peak")
        out[batch] = {"peak": lc["peak"], "baseline_peak": bl["peak"],
                      "peak_ratio": ratio(lc["peak"], bl["peak"]), "points": points,
                      "ceiling_peak": ceiling, "ceiling_ratio": ratio(lc["peak"], ceiling),
                      "saturation_runs": [r["throughput"] for r in lc["saturation"]],
                      "baseline_saturation_runs": [r["throughput"] for r in bl["saturation"]]}
    return out


def drain(results: dict[str, Any]) -> dict[str, Any]:
    part = results["parts"].get("drain")
    if not part:
        return {}
    rates = part["median_rate"]
    cpu = {kind: {name: median(r["cpu_by_process"][name] for r in runs)
                  for name in runs[0]["cpu_by_process"]}
           for kind, runs in part["runs"].items() if runs}
    redis_per_event = {kind: median(r.get("redis_commands_per_event") for r in runs)
                       for kind, runs in part["runs"].items()}
    fanout = rates.get("linecap-fanout")  # absent from runs before the fan-out existed
    return {"linecap": rates["linecap"], "noop": rates["noop"],
            "ratio": ratio(rates["linecap"], rates["noop"]),
            "fanout": fanout, "fanout_ratio": ratio(fanout, rates["noop"]) if fanout else None,
            "cpu": cpu,
            "redis_per_event": redis_per_event,
            "other_cores": max(r["cpu"]["other_cores"] for runs in part["runs"].values()
                               for r in runs)}


def budget(results: dict[str, Any]) -> dict[str, Any]:
    part = results["parts"].get("budget")
    if not part:
        return {}
    per_event = part["calls_per_event"]
    return {
        "fraction": part["budget_fraction"], "status_429": part["status_429"],
        "calls_per_event": per_event,
        "vs_floor": {s: ratio(v, CALL_FLOOR.get(s)) for s, v in per_event.items()},
        "max_60s": part["max_calls_in_any_60s"],
    }


def backfill(results: dict[str, Any]) -> dict[str, Any]:
    """Calls per 1,000 followers, batched and one by one; hours for 100,000 at 100 RPM;
    live latency with and without the back-fill."""
    part = results["parts"].get("backfill")
    if not part:
        return {}
    batched, single = part["batched"], part["single"]
    bulk_rpm = 100 * (1 - part["live_reserve"])  # what the bulk lane may use of 100 RPM

    def hours(calls_per_1000: float) -> float:
        return calls_per_1000 * PROJECTED_FOLLOWERS / 1000 / bulk_rpm / 60

    scale = part["plan"]["scale"]
    alone, during = part["latency_alone"], part["latency_during"]
    return {
        "per_1000": batched["per_1000"], "single_per_1000": single["per_1000"],
        "ratio": ratio(batched["per_1000"], single["per_1000"]),
        "groups": batched["groups_per_1000"], "single_groups": single["groups_per_1000"],
        "hours_shared": hours(batched["per_1000"]),
        "single_hours_shared": hours(single["per_1000"]),
        "hours_per_group": hours(max(batched["groups_per_1000"].values(), default=0)),
        "single_hours_per_group": hours(max(single["groups_per_1000"].values(), default=0)),
        "hours_measured": batched["span_seconds"] * scale / 3600
        * PROJECTED_FOLLOWERS / batched["followers"],
        "bulk_rpm": bulk_rpm, "scale": scale, "share_used": batched.get("bulk_share_used"),
        "p50_alone": alone.get("p50"), "p99_alone": alone.get("p99"),
        "p50_during": during.get("p50"), "p99_during": during.get("p99"),
        "p99_ratio": ratio(during.get("p99"), alone.get("p99")),
        "p50_ratio": ratio(during.get("p50"), alone.get("p50")),
        "status_429": part["status_429"], "dead_letters": part["dead_letters"],
    }


def memory(results: dict[str, Any]) -> dict[str, Any]:
    """Largest RSS/PSS of one web worker and of one Celery process of each kind, in KiB."""
    out: dict[str, Any] = {}
    part1 = results["parts"].get("receiver")
    if part1:
        for name in ("linecap", "baseline"):
            workers = list(part1[name].get("memory", {}).values())
            out[f"web {name}"] = _largest(workers)
    part2 = results["parts"].get("drain")
    if part2:
        for name in ("linecap", "noop"):
            mem = part2["memory"].get(name) or {}
            out[f"celery main {name}"] = mem.get("main", {})
            out[f"celery pool {name}"] = _largest(mem.get("children", []))
    return out


def _largest(entries: list[dict[str, int]]) -> dict[str, int]:
    return {key: max((e.get(key, 0) for e in entries), default=0)
            for key in ("rss_kib", "pss_kib")}


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target: what was measured, met or not, and by how much."""
    rows = []
    rec = receiver(results)
    for batch, required in (("1", True), ("5", True)):
        point = rec.get(batch, {}).get("points", {}).get(TARGET_RATE, {}).get("linecap")
        if point is None:
            continue
        p99 = point["p99"]
        rows.append({
            "key": f"p99_{batch}", "required": required,
            "target": f"p99 ≤ {TARGET_P99_MS:g} ms at 500 req/s, {batch} event(s)/request",
            "measured": p99, "unit": "ms", "met": p99 is not None and p99 <= TARGET_P99_MS,
            "margin": None if p99 is None else p99 / TARGET_P99_MS,
        })
    dr = drain(results)
    if dr:
        rows.append({"key": "drain", "required": True, "target": "drain ≥ 50 % of the no-op rate",
                     "measured": dr["ratio"], "unit": "ratio",
                     "met": dr["ratio"] is not None and dr["ratio"] >= TARGET_DRAIN_RATIO,
                     "margin": ratio(dr["ratio"], TARGET_DRAIN_RATIO)})
    bu = budget(results)
    if bu:
        fraction = bu["fraction"]
        rows.append({"key": "budget", "required": True, "target": "budget used ≥ 95 %",
                     "measured": fraction, "unit": "ratio",
                     "met": fraction is not None and fraction >= TARGET_BUDGET,
                     "margin": ratio(fraction, TARGET_BUDGET)})
        rows.append({"key": "429", "required": True, "target": "429s received = 0",
                     "measured": bu["status_429"], "unit": "count",
                     "met": bu["status_429"] == 0, "margin": None})
    bf = backfill(results)
    if bf:
        rows.append({"key": "calls_per_1000", "required": True,
                     "target": f"back-fill: calls per 1,000 followers ≤ {TARGET_CALLS_PER_1000:,}",
                     "measured": round(bf["per_1000"]), "unit": "count",
                     "met": bf["per_1000"] <= TARGET_CALLS_PER_1000, "margin": None})
        p99 = bf["p99_during"]
        rows.append({"key": "live_during_backfill", "required": True,
                     "target": "live follow during a back-fill: p99 webhook → subscription "
                               f"written ≤ {TARGET_LIVE_P99_MS / 1000:g} s",
                     "measured": p99, "unit": "ms",
                     "met": p99 is not None and p99 <= TARGET_LIVE_P99_MS,
                     "margin": None if p99 is None else p99 / TARGET_LIVE_P99_MS})
    return rows
