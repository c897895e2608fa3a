"""The report's part 5 section: the back-fill's calls, what each is for, the projection for
100,000 followers, and live latency while it runs."""

from __future__ import annotations

from typing import Any

from bench import figures
from bench.fmt import ms, num, pct, table, times

GROUP_ORDER = ("lookup", "add", "bulk", "subscriptions", "identifiers")

# What each call of a back-filled follower is for, per scenario (docs/CAPILLARY.md has the
# documents behind each).
CALLS_FOR = [
    ["already in Capillary", "lookup by LINE id, subscriptions embedded", "1",
     "which customer, and whether LINE is already OPTIN for this account (then no write)"],
    ["already in Capillary", "subscription write", "0 or 1",
     "OPTIN for the channel's account; skipped when the lookup showed it already"],
    ["new", "lookup by LINE id", "1",
     "proves no customer holds this LINE profile under another identifier: registering "
     "blind would give such a follower a second, stray INSTORE customer"],
    ["new", "INSTORE profile, in a batch (`POST /v2/customers/bulk`)", "1 per batch",
     "the guide's first profile; up to CAPILLARY_BATCH_SIZE followers per call"],
    ["new", "LINE profile, in the next batch", "1 per batch",
     "the guide's second profile; Capillary combines it onto the INSTORE customer (8050)"],
    ["new", "subscription write", "1",
     "OPTIN; no documented API batches LINE subscriptions"],
]


def section(results: dict[str, Any]) -> str:
    part = results["parts"].get("backfill")
    if not part:
        return ""
    fig = figures.backfill(results)
    plan, batched, single = part["plan"], part["batched"], part["single"]
    groups = [g for g in GROUP_ORDER if g in fig["groups"] or g in fig["single_groups"]]
    group_rows = [[g, num(fig["groups"].get(g, 0), 0), num(fig["single_groups"].get(g, 0), 0)]
                  for g in groups]
    group_rows.append(["**all**", f"**{num(fig['per_1000'], 0)}**",
                       f"**{num(fig['single_per_1000'], 0)}**"])
    scenario_rows = [[s, num(batched["per_follower"].get(s), 2),
                      num(single["per_follower"].get(s), 2)]
                     for s in ("existing", "new")]
    return "\n\n".join([
        "## 5. Back-fill under a 100 RPM budget, and live follows meanwhile",
        f"{plan['followers']:,} followers in the LINE sandbox, "
        f"{pct(plan['existing_fraction'], 0)} of them already in Capillary (INSTORE and LINE "
        "profiles, not opted in), the rest new; `linecap backfill-followers` pages through "
        "them and sends batches to the bulk lane. One web process and one worker with the "
        "Procfile's commands, the Capillary sandbox playing the lenient org. "
        f"**Time-scaled ×{plan['scale']}**: linecap's budget "
        f"(`CAPILLARY_RATE_LIMIT_RPM={part['rpm']}`) and the sandbox's own limit are both 100 × "
        f"{plan['scale']} calls per minute, so a real second stands for {plan['scale']} s of a "
        "100 RPM cluster. Call counts do not depend on the scale; durations are multiplied "
        "back. Batches reserve their calls before the first one, so the scale does not hide "
        "batches stopped half-way by an empty budget. The calls baseline, measured in the "
        f"same run: {plan['single_followers']:,} other followers of the same mix sent the way "
        "back-fills went before, one follow task per follower.",
        f"**{num(fig['per_1000'], 0)} calls per 1,000 followers**, against "
        f"{num(fig['single_per_1000'], 0)} one by one ({times(fig['ratio'])}). The target of "
        f"{figures.TARGET_CALLS_PER_1000:,} is not reached: a lookup and a subscription write "
        "per follower are 2,000 already, and neither can be dropped safely with the "
        "documented APIs (table below). Capillary budgets each API separately, though: with "
        "a budget per API group (`CAPILLARY_RATE_LIMIT_RPM_<GROUP>`) the lookups and the "
        "writes run side by side, and the back-fill takes as long as its busiest group.",
        table(["API group", "calls per 1,000 followers, batched",
               "one task per follower"], group_rows),
        table(["follower", "calls each (batch calls aside), batched", "one by one"],
              scenario_rows),
        "What each call is for:",
        table(["follower", "call", "calls", "why"], CALLS_FOR),
        "Projected time for 100,000 followers at 100 RPM (the bulk lane may use "
        f"{num(fig['bulk_rpm'], 0)} calls a minute: LINECAP_LIVE_RESERVE_PERCENT="
        f"{round(100 * part['live_reserve'])} keeps the rest for live events):",
        table(["", "batched", "one task per follower"], [
            ["one shared budget", f"{num(fig['hours_shared'], 1)} h",
             f"{num(fig['single_hours_shared'], 1)} h"],
            ["a 100 RPM budget per API group", f"{num(fig['hours_per_group'], 1)} h",
             f"{num(fig['single_hours_per_group'], 1)} h"],
            ["measured here, scaled back (shared budget)", f"{num(fig['hours_measured'], 1)} h",
             "—"],
        ]),
        f"The back-fill's {batched['calls']:,} calls took {num(batched['span_seconds'], 0)} "
        f"real seconds; over its whole 61 s windows it used {pct(fig['share_used'])} of what "
        "the bulk lane may take. 429s: "
        f"{fig['status_429']}; dead letters: {fig['dead_letters']}.",
        f"Live follows ({plan['live_follows']} new users, one every "
        f"{plan['live_interval']:g} s, each needing lookup, INSTORE, LINE and subscription), "
        "from the webhook's POST to the sandbox receiving the subscription write:",
        table(["", "p50", "p99", "max", "follows measured"], [
            ["alone", ms(fig["p50_alone"]), ms(fig["p99_alone"]),
             ms(part["latency_alone"].get("max")), part["latency_alone"]["count"]],
            ["during the back-fill", ms(fig["p50_during"]), ms(fig["p99_during"]),
             ms(part["latency_during"].get("max")), part["latency_during"]["count"]],
            ["**ratio**", times(fig["p50_ratio"]), times(fig["p99_ratio"]), "", ""],
        ]),
        "Live latency is not scaled: each live follow's calls take loopback time. What the "
        "comparison shows is whether a live follow waits behind the back-fill: for its "
        "budget (the live reserve says no) and for a worker process (the one worker runs "
        "both lanes; a batch in progress holds its process for a few hundred milliseconds).",
    ])
