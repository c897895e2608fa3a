"""The report's per-part sections and the "what bounds it" notes, from one run's results."""

from __future__ import annotations

from typing import Any

from bench import figures
from bench.fmt import mib, ms, num, pct, table, times
from bench.stats import ratio


def receiver(results: dict[str, Any]) -> str:
    part = results["parts"].get("receiver")
    if not part:
        return ""
    plan = results["plans"]["receiver"]
    rec = figures.receiver(results)
    out = [
        "## 1. Webhook acknowledgement",
        "linecap's receiver (gunicorn with the Procfile's settings, real Redis; no worker runs, "
        "so the queue only grows and is emptied between runs) against the baseline: "
        "`bench/sync_receiver.py`, the LINE SDK samples' pattern, which checks the signature "
        "and then calls Capillary inline (lookup + subscription per event) before answering, "
        f"under the same gunicorn settings, with the sandbox at {part['baseline_latency_ms']} ms "
        "latency per call. Every request carries distinct, correctly signed events.",
        f"Method: saturation = closed loop, {plan['closed_connections']} connections "
        f"({plan['baseline_closed_connections']} for the baseline, twice its 8 threads), "
        f"{plan['saturation_seconds']:g} s × {plan['saturation_repeats']} after "
        f"{plan['warmup']:g} s warm-up. Then open loop (requests due at a constant rate, "
        "latency measured from the due time, so a stall is charged for the queue behind it) at "
        f"50 % and 90 % of each receiver's own saturation, and at 500 req/s for linecap: "
        f"{plan['open_seconds']:g} s × {plan['open_repeats']} for linecap, "
        f"{plan['baseline_open_seconds']:g} s × {plan['baseline_open_repeats']} for the "
        "baseline (its runs are slow; the sample count is shown). Connections are kept alive, "
        f"opened one by one while the server is idle ({plan['open_preopen']} for the open "
        "loops) and used in turn, which shares them evenly between the two gunicorn workers. "
        "Opened under load they are not: gthread's workers race to accept and the busy one "
        "wins, so every connection can end up on one worker (one worker near 1 core, the "
        "other idle, throughput down by a third or more — seen while building this bench). "
        "A deployment behind a router that holds a few long-lived connections can meet the "
        "same imbalance.",
    ]
    for batch, fig in rec.items():
        out.append(f"### {batch} event(s) per request")
        out.append(
            f"Saturation: linecap {num(fig['peak'], 0)} req/s "
            f"({num(fig['peak'] * int(batch), 0)} events/s; runs "
            f"{', '.join(num(x, 0) for x in fig['saturation_runs'])}), baseline "
            f"{num(fig['baseline_peak'], 1)} req/s (runs "
            f"{', '.join(num(x, 1) for x in fig['baseline_saturation_runs'])}): "
            f"**{times(fig['peak_ratio'])}**."
            + (f" A Flask hello-world on the same path under the same gunicorn settings "
               f"(`bench/hello_app.py`: reads the body, answers 200), the ceiling of this stack "
               f"on this machine: {num(fig['ceiling_peak'], 0)} req/s; linecap reaches "
               f"**{times(fig['ceiling_ratio'])}** of it." if fig.get("ceiling_peak") else ""))
        rows = []
        for label, point in fig["points"].items():
            for name in ("linecap", "baseline"):
                p = point[name]
                if p is None:
                    continue
                rows.append([label, name, num(p["rate"], 1), num(p["throughput"], 1),
                             ms(p["p50"]), ms(p["p99"]), ms(p["p99.9"]), ms(p["max"]),
                             f"{p['samples']:,} / {p['repeats']}", p["errors"],
                             num(p["web_cpu_ms"], 2), num(p["busy_cores"], 2),
                             num(p["other_cores"], 2)])
            rows.append([label, "**ratio**", "", "", "", f"**{times(point['p99_ratio'])}**",
                         "", "", "", "", "", "", ""])
        out.append(table(["load", "receiver", "offered req/s", "answered req/s", "p50", "p99",
                          "p99.9", "max", "samples / repeats", "non-200", "web CPU ms/req",
                          "machine busy (cores)", "other procs (cores)"], rows))
        high = fig["points"].get("90%", {}).get("linecap")
        if high:
            out.append(
                f"At 90 % of its saturation linecap's receiver keeps "
                f"{num(high['busy_cores'], 2)} of the machine's 2 cores busy (web workers, Redis "
                f"and the load tool), so requests queue (p50 {ms(high['p50'])}); the closed-loop "
                "peak is what "
                "the machine does flat out, and a constant arrival rate this close to it leaves "
                "no slack for bursts. The baseline's limit is its 8 threads waiting on "
                "Capillary, not CPU.")
    out.append("\"web CPU ms/req\" is the CPU time of the gunicorn processes per answered "
               "request (warm-up included); \"machine busy\" is all CPU in use on the machine; "
               "\"other procs\" is the most CPU that processes outside the bench used during "
               "any repeat of that row (the machine may be shared).")
    return "\n\n".join(out)


def drain(results: dict[str, Any]) -> str:
    part = results["parts"].get("drain")
    if not part:
        return ""
    fig = figures.drain(results)
    rows = []
    kinds = [k for k in ("linecap", "linecap-fanout", "noop") if part["runs"].get(k)]
    for kind in kinds:
        for i, run in enumerate(part["runs"][kind], 1):
            rows.append([kind, i, num(run["rate"], 0), num(run["seconds"], 1),
                         num(run.get("calls_per_event"), 2) if kind != "noop" else "—",
                         _outcomes(run.get("outcomes")), num(run["cpu"]["other_cores"], 2)])
    cpu_rows = [[name, *(num(fig["cpu"].get(kind, {}).get(name), 2) for kind in kinds),
                 num(_per_event(fig, name), 2)]
                for name in fig["cpu"].get("linecap", {})]
    fanout = ""
    if fig["fanout"]:
        fanout = (
            f"**Events of 5-event requests** (queued as the receiver queues them: one "
            f"`fan_out_events` message per request, which a worker splits into the five event "
            f"messages): **{num(fig['fanout'], 0)} events/s, {times(fig['fanout_ratio'])} the "
            f"no-op rate**, {times(ratio(fig['fanout'], fig['linecap']))} linecap's rate for "
            "events queued one by one. The split is the worker's extra work per event; "
            "what it buys is in part 1 (one message per request at the receiver).")
    return "\n\n".join(p for p in [
        "## 2. Worker drain",
        f"{part['events']:,} follow events for known users, queued before the worker starts; "
        "the clock runs from the first message leaving the queue to nothing queued or unacked. "
        "Known users are registered in the sandbox (INSTORE + LINE profile) and their customer "
        "ids put in linecap's cache with `StateStore.cache_customer` (what an earlier follow "
        "leaves behind), so each event is one Capillary call; budget 100,000,000 RPM. "
        "Baseline: a no-op task (`bench/noop_app.py`) given the very same messages, with "
        "linecap's Celery settings and the same worker command; runs alternate.",
        f"**linecap {num(fig['linecap'], 0)} events/s vs no-op {num(fig['noop'], 0)} events/s: "
        f"{times(fig['ratio'])}** (median of {len(part['runs']['linecap'])}).",
        table(["worker", "run", "events/s", "seconds", "Capillary calls/event", "outcomes",
               "other procs (cores)"], rows),
        fanout,
        "CPU by process during the drains (cores, median over the runs):",
        table(["process", *kinds, "linecap ms per event"], cpu_rows),
        _profile_block("linecap pool process", part.get("profile", {}).get("linecap", {})
                       .get("pool")),
        _profile_block("no-op worker, Celery main process",
                       part.get("profile", {}).get("noop", {}).get("main")),
    ] if p)


def budget(results: dict[str, Any]) -> str:
    part = results["parts"].get("budget")
    if not part:
        return ""
    fig = figures.budget(results)
    mix = ", ".join(f"{n:,} {figures.SCENARIO_NAMES[s]}" for s, n in part["mix"].items())
    rows = []
    for scenario, n in part["mix"].items():
        routes = part["calls_by_route"].get(scenario, {})
        detail = "; ".join(f"{route}: {count}" for route, count in sorted(routes.items()))
        rows.append([figures.SCENARIO_NAMES[scenario], n, num(fig["calls_per_event"][scenario], 2),
                     figures.CALL_FLOOR[scenario], times(fig["vs_floor"][scenario]), detail])
    drain_info = part["drain"]
    return "\n\n".join([
        "## 3. Budget use",
        f"`CAPILLARY_RATE_LIMIT_RPM=600`, and the sandbox enforces 600 calls per sliding 60 s "
        f"itself (a call over it is answered 429). Backlog of {sum(part['mix'].values()):,} "
        f"events, shuffled: {mix}. One worker (Procfile settings). Calls are counted from the "
        "sandbox's call log and attributed to users by the identifiers in each call.",
        f"**Budget used: {pct(fig['fraction'])}** of 600 calls per minute, over the whole "
        "60 s windows from the first call (the last, partial window, where the backlog runs "
        f"out, is left out). {part['calls']:,} calls in {num(part['span_seconds'], 0)} s; "
        f"most in any 60 s: {fig['max_60s']}; **429s: {fig['status_429']}**. The backlog "
        f"drained in {num(drain_info['seconds'], 0)} s; outcomes: "
        f"{_outcomes(part['outcomes'])}; dead letters: {part['dead_letters']}.",
        table(["scenario", "events", "calls/event", "fewest possible", "ratio",
               "calls (method route status: count)"], rows),
        "\"Fewest possible\" is the design's floor: a follow must set OPTIN whatever "
        "Capillary holds, so only the customer id is safe to cache (24 h by default); a cold "
        "known user needs the lookup (with embedded subscriptions, which saves the write when "
        "it is already right); a new user needs lookup, INSTORE, LINE and the subscription. "
        "Calls above the floor are repeats after the budget ran out mid-event (the task "
        "comes back later and looks again).",
    ])


def footprint(results: dict[str, Any]) -> str:
    mem = figures.memory(results)
    if not mem:
        return ""
    pairs = (("one web worker", "web linecap", "web baseline", "sync receiver"),
             ("Celery main process", "celery main linecap", "celery main noop", "no-op worker"),
             ("one Celery pool process", "celery pool linecap", "celery pool noop",
              "no-op worker"))
    rows = []
    for label, mine, theirs, name in pairs:
        if mine in mem and theirs in mem:
            a, b = mem[mine], mem[theirs]
            rows.append([label, mib(a.get("rss_kib")), mib(a.get("pss_kib")),
                         f"{name}: {mib(b.get('rss_kib'))}",
                         times((a.get("rss_kib") or 0) / b["rss_kib"] if b.get("rss_kib")
                               else None)])
    return "\n\n".join([
        "## 4. Footprint",
        "Measured after the runs (web workers at the end of part 1, Celery at the end of the "
        "last drain of part 2), "
        "from /proc: RSS, and PSS (shared pages split among the processes sharing them — what "
        "a pool of forked processes really costs each).",
        table(["process", "RSS", "PSS", "baseline RSS", "ratio (RSS)"], rows),
    ])


def bounds(results: dict[str, Any]) -> str:
    """What limits each target's figure, from this run's CPU figures and profiles."""
    out = []
    rec = figures.receiver(results)
    one = rec.get("1", {}).get("points", {}).get(figures.TARGET_RATE, {}).get("linecap")
    five = rec.get("5", {})
    profiles = results["parts"].get("receiver", {}).get("linecap", {}).get("profile", {})
    if one:
        out.append(
            f"**Receiver at 500 req/s.** The median answer takes {ms(one['p50'])}; the web "
            f"workers spend {num(one['web_cpu_ms'], 2)} ms CPU per request and use "
            f"{num(one['web_cores'], 2)} of the 2 cores, so the tail (p99 {ms(one['p99'])}, "
            f"p99.9 {ms(one['p99.9'])}) is queueing, not work: each gthread worker runs its 4 "
            "request threads under one GIL (a thread that wants it waits up to the 5 ms "
            "switch interval), a garbage collection pauses every thread of that worker "
            "(start-up objects are frozen out of it, gunicorn.conf.py), and "
            "the load tool, Redis and anything else on the machine share the same 2 cores "
            f"(other processes: up to {num(one['other_cores'], 2)} cores during these runs). "
            "The profile below (py-spy, GIL-holding samples of both web workers at 500 req/s) "
            f"shows where the CPU goes: {_share(profiles.get('1'), 'Celery.send_task')} of "
            "samples are in Celery's `send_task` (building the message and its `task-sent` "
            "event for Flower, both sent in one pipelined Redis round trip), the rest "
            "gunicorn, Flask and logging.")
    if five:
        point = five.get("points", {}).get(figures.TARGET_RATE, {}).get("linecap")
        if point and point["web_cpu_ms"]:
            out.append(_five_events_bound(five, point, profiles.get("5")))
    out.append(_profile_block("web workers at 500 req/s, 1 event/request", profiles.get("1")))
    out.append(_profile_block("web workers at 500 req/s, 5 events/request", profiles.get("5")))
    dr = figures.drain(results)
    if dr:
        cpu = dr["cpu"].get("linecap", {})
        busy = sum(cpu.values())
        pool = results["parts"]["drain"].get("profile", {}).get("linecap", {}).get("pool")
        out.append(
            f"**Worker drain.** The no-op baseline is bound by Celery's single main process "
            f"({num(dr['cpu'].get('noop', {}).get('celery main'), 2)} cores: fetch, decode, "
            "log, hand to the pool, ack, task events); its pool is nearly idle. linecap adds, "
            f"per event, {num(dr['redis_per_event'].get('linecap'), 1)} Redis commands "
            f"(no-op: {num(dr['redis_per_event'].get('noop'), 1)}; dedup check, user lock, "
            "order record, customer cache, rate-limit script, final record, unlock), one HTTP "
            "call through `requests` and two log lines; with the sandbox on the same machine the "
            f"processes of the drain use {num(busy, 2)} of the 2 cores (pool "
            f"{num(cpu.get('celery pool'), 2)}, main {num(cpu.get('celery main'), 2)}, "
            f"sandbox {num(cpu.get('capillary sandbox'), 2)}, Redis {num(cpu.get('redis'), 2)}),"
            " so the figure is CPU-bound, and part of that CPU is the fake Capillary's, which "
            "a deployment does not pay. In the pool profile "
            f"{_share(pool, 'Session.request')} of samples are inside `requests` for that one "
            f"call, against {_share(pool, 'Redis.execute_command')} for all the Redis "
            "commands.")
    bu = figures.budget(results)
    if bu and bu["fraction"] is not None:
        out.append(
            f"**Budget.** The shared limiter is a sliding log, so a full backlog spends the "
            f"minute's 600 calls in a burst and waits for the oldest to age out: "
            f"{pct(bu['fraction'])} of the budget was used over whole windows, the most in "
            f"any 60 s was {bu['max_60s']} (the sandbox's own count), and "
            f"{bu['status_429']} calls were refused.")
    return "\n\n".join(p for p in out if p)


def _five_events_bound(five: dict[str, Any], point: dict[str, Any],
                       profile: dict[str, Any] | None) -> str:
    needed = point["web_cpu_ms"] * 500 / 1000  # cores at the target rate
    met = point["p99"] <= figures.TARGET_P99_MS
    head = (f"**5 events per request.** 500 req/s is 2,500 events/s; this machine's receiver "
            f"saturates at {num(five['peak'], 0)} req/s ({num(five['peak'] * 5, 0)} events/s). "
            f"Each request costs {num(point['web_cpu_ms'], 2)} ms of web CPU, "
            f"{num(needed, 2)} cores at 500 req/s, beside Redis and the load tool on 2 cores. ")
    how = ("The request is one Celery message (`linecap.fan_out_events` carrying the five "
           "events; app/publisher.py), sent with its `task-sent` event in one pipelined Redis "
           "round trip, and a worker splits it into one message per event (task id = "
           "webhookEventId, which the worker's dedup relies on); part 2 shows what the split "
           "costs the worker. `send_task` is "
           f"{_share(profile, 'Celery.send_task')} of the web workers' samples in the profile "
           "below. ")
    if met:
        return head + how + (f"p99 is {ms(point['p99'])}, "
                             f"{times(point['p99'] / figures.TARGET_P99_MS)} the limit.")
    return head + how + (
        f"p99 is {ms(point['p99'])}, {times(point['p99'] / figures.TARGET_P99_MS)} the limit "
        f"(median of the repeats: {', '.join(ms(x) for x in point.get('p99_runs', []))}). "
        f"The machine is not busy ({num(point['busy_cores'], 2)} of 2 cores), so the tail is "
        "the same queueing as with one event (threads waiting for the GIL, collections of "
        "request objects, the load tool and Redis on the same cores), over a request that "
        "takes a little longer: the signature over a five times bigger body, decoding and "
        "re-encoding five events. `LINECAP_TASK_SENT_EVENTS=0` drops the `task-sent` event "
        "(Flower then shows a task only once a worker has it).")


def _profile_block(title: str, profile: dict[str, Any] | None) -> str:
    if not profile or not profile.get("samples"):
        return ""
    rows = [[name, f"{share:.1f} %"] for name, share in profile["inclusive"]][:14]
    own = [[name, f"{share:.1f} %"] for name, share in profile["self"][:8]]
    return (f"Profile — {title} ({profile['samples']:,} py-spy samples taken while the "
            "process held the GIL; share of samples with the function on the stack, thread, "
            "pool and start-up plumbing left out):\n\n"
            + table(["function", "inclusive"], rows)
            + "\n\nBusiest functions by own time:\n\n" + table(["function", "self"], own))


def _share(profile: dict[str, Any] | None, function: str) -> str:
    """Inclusive share of the first profiled frame whose name starts with `function`."""
    for name, share in (profile or {}).get("inclusive", []):
        if name.startswith(function + " "):
            return f"{share:.0f} %"
    return "n/a"


def _per_event(fig: dict[str, Any], name: str) -> float | None:
    cores = fig["cpu"].get("linecap", {}).get(name)
    return None if cores is None or not fig["linecap"] else 1000.0 * cores / fig["linecap"]


def _outcomes(counts: dict[str, int] | None) -> str:
    if not counts:
        return "—"
    return ", ".join(f"{k} {v:,}" for k, v in sorted(counts.items()))

