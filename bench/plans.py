"""How long and how much each part runs: the full run (default) and `--quick` (a smoke run)."""

from __future__ import annotations

from dataclasses import dataclass

from bench.backfill import BackfillPlan
from bench.budget import BudgetPlan
from bench.drain import DrainPlan
from bench.receiver import ReceiverPlan


@dataclass(frozen=True)
class Plans:
    name: str
    receiver: ReceiverPlan
    drain: DrainPlan
    budget: BudgetPlan
    backfill: BackfillPlan


FULL = Plans(
    name="full",
    receiver=ReceiverPlan(saturation_seconds=6, saturation_repeats=3, open_seconds=8,
                          open_repeats=3, baseline_open_seconds=12, baseline_open_repeats=1,
                          warmup=1.0, profile_seconds=6),
    drain=DrainPlan(events=10_000, repeats=3, profile_events=3_000),
    budget=BudgetPlan(mix={"known_warm": 1_500, "known_cold": 300, "new": 450,
                           "unfollow": 750}, timeout=900),
    backfill=BackfillPlan(followers=10_000, single_followers=1_000, existing_fraction=0.3,
                          scale=60, live_follows=40, live_interval=2.0, timeout=1800),
)

QUICK = Plans(
    name="quick",
    receiver=ReceiverPlan(saturation_seconds=2, saturation_repeats=1, open_seconds=2,
                          open_repeats=1, baseline_open_seconds=3, baseline_open_repeats=1,
                          warmup=0.5, profile_seconds=2),
    drain=DrainPlan(events=300, repeats=1, profile_events=300),
    budget=BudgetPlan(mix={"known_warm": 40, "known_cold": 20, "new": 20, "unfollow": 20},
                      timeout=120),
    backfill=BackfillPlan(followers=300, single_followers=100, existing_fraction=0.3,
                          scale=60, live_follows=5, live_interval=0.5, timeout=300),
)
