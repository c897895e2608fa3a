"""Part 3: a 600 RPM budget and a mixed backlog — how much of the budget turns into work.

Scenarios (users disjoint, events shuffled into one backlog):
- known, warm: registered in Capillary and in linecap's customer cache (a user seen before);
- known, cold: registered in Capillary, not in the cache (cache expired, or imported users);
- new: unknown to Capillary (lookup, INSTORE, LINE, subscription);
- unfollow: a known user (cached) who blocks the account.
Every figure comes from the sandbox's call log; the sandbox enforces the same 600 RPM itself,
so a call over the budget shows up as a 429.
"""

from __future__ import annotations

import random
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

from bench.bodies import CHANNEL_ID, line_event, new_user_id
from bench.cpu import cpu_window
from bench.procs import children, memory_kib
from bench.queueing import outcomes, publish_events, publisher_app, watch_drain
from bench.sandbox import EXTERNAL_ID_PREFIX, Sandbox
from bench.stack import BenchStack
from config import load_settings
from core.store.dead_letters import DeadLetterStore
from core.store.state import StateStore
from sandboxes.capillary.calllog import max_in_window

BUDGET_RPM = 600
WINDOW = 60.0
SCENARIOS = ("known_warm", "known_cold", "new", "unfollow")


@dataclass(frozen=True)
class BudgetPlan:
    mix: dict[str, int]  # scenario -> events
    timeout: float


class BudgetBench:
    """`prepare()` early (the sandbox's own 60 s window must forget the set-up), `run()` later."""

    def __init__(self, stack: BenchStack, plan: BudgetPlan, log: Any) -> None:
        self.stack = stack
        self.plan = plan
        self.log = log
        self.redis = stack.redis.client()
        self.users: dict[str, list[str]] = {}
        self.ids: dict[str, int] = {}
        self.prepared_at = 0.0

    def prepare(self) -> None:
        self.sandbox = self.stack.start_capillary("capillary-part3")
        self.line_url = self.stack.start_line("line-sandbox-part3")
        self.users = {s: [new_user_id() for _ in range(self.plan.mix.get(s, 0))]
                      for s in SCENARIOS}
        known = self.users["known_warm"] + self.users["known_cold"] + self.users["unfollow"]
        self.ids = self.sandbox.register_many(known)
        self.prepared_at = time.monotonic()
        self.log(f"part 3: {len(known)} known users registered")

    def run(self) -> dict[str, Any]:
        wait = self.prepared_at + WINDOW + 1 - time.monotonic()
        if wait > 0:
            self.log(f"part 3: waiting {wait:.0f}s for the sandbox's 60 s window to clear")
            time.sleep(wait)
        self.sandbox.faults(rpm_limit=BUDGET_RPM)
        env = self.stack.env(capillary_url=self.sandbox.url, line_url=self.line_url,
                             CAPILLARY_RATE_LIMIT_RPM=str(BUDGET_RPM))
        self.redis.flushdb()
        self._prime_cache(env)
        batch = self._events()
        publish_events(publisher_app(env), CHANNEL_ID, batch)
        seq = self.sandbox.last_seq()
        worker = self.stack.start_worker("worker-budget", "workers.celery_app", env)
        try:
            with cpu_window() as window:
                drain = watch_drain(self.redis, len(batch), timeout=self.plan.timeout, poll=0.05)
            drain["cpu"] = window.result
            memory = {"main": memory_kib(worker.pid),
                      "children": [memory_kib(p) for p in children(worker.pid)]}
        finally:
            self.stack.stop(worker)
        calls = self.sandbox.calls(since=seq)
        result = analyse(calls, self._user_scenarios(), customer_users(self.sandbox), self.plan.mix)
        result.update(drain=drain, memory=memory, mix=self.plan.mix,
                      outcomes=outcomes(self.redis, (e["webhookEventId"] for e in batch)),
                      dead_letters=DeadLetterStore(self.redis).count())
        self.log(f"part 3: {len(calls)} calls in {drain['seconds']:.0f}s, "
                 f"budget used {fmt(result['budget_fraction'])}, 429s {result['status_429']}")
        return result

    def _prime_cache(self, env: dict[str, str]) -> None:
        settings = load_settings(env)
        state = StateStore(self.redis, settings.event_dedup_ttl_seconds,
                           settings.customer_cache_ttl_seconds, settings.user_lock_seconds)
        for user in self.users["known_warm"] + self.users["unfollow"]:
            state.cache_customer(CHANNEL_ID, user, self.ids[user])

    def _events(self) -> list[dict[str, Any]]:
        batch = [line_event(u, "unfollow" if s == "unfollow" else "follow")
                 for s, users in self.users.items() for u in users]
        random.Random(7).shuffle(batch)
        return batch

    def _user_scenarios(self) -> dict[str, str]:
        return {u: s for s, users in self.users.items() for u in users}



def customer_users(sandbox: Sandbox) -> dict[int, str]:
    """Customer id -> LINE user, read back from the sandbox (new users included)."""
    mapping = {}
    for customer in sandbox.customers():
        for profile in customer.get("profiles", []):
            for ident in profile.get("identifiers", []):
                if ident.get("type") == "line":
                    mapping[int(customer["id"])] = ident["value"]
    return mapping


def call_user(call: dict[str, Any], customers: dict[int, str]) -> str | None:
    """Which LINE user a logged Capillary call was made for."""
    query = call.get("query") or {}
    value = query.get("identifierValue")
    if value:
        return value[len(EXTERNAL_ID_PREFIX):] if value.startswith(EXTERNAL_ID_PREFIX) else value
    body = call.get("body")
    if isinstance(body, dict) and isinstance(body.get("profiles"), list):
        for profile in body["profiles"]:
            for ident in profile.get("identifiers", []):
                if ident.get("type") == "line":
                    return ident["value"]
                if ident.get("type") == "externalId":
                    return ident["value"][len(EXTERNAL_ID_PREFIX):]
    parts = call.get("path", "").split("/")
    if len(parts) > 3 and parts[3].isdigit():
        return customers.get(int(parts[3]))
    return None


def analyse(calls: list[dict[str, Any]], scenario_of: dict[str, str],
            customers: dict[int, str], mix: dict[str, int]) -> dict[str, Any]:
    per_scenario: dict[str, Counter[str]] = defaultdict(Counter)
    for call in calls:
        scenario = scenario_of.get(call_user(call, customers) or "", "unattributed")
        per_scenario[scenario][f"{call['method']} {call['route']} {call['status']}"] += 1
    metered = sorted(c["ts"] for c in calls if c.get("metered"))
    return {
        "calls": len(calls),
        "status_429": sum(1 for c in calls if c["status"] == 429),
        "calls_per_event": {s: sum(per_scenario[s].values()) / n
                            for s, n in mix.items() if n},
        "calls_by_route": {s: dict(c) for s, c in per_scenario.items()},
        "budget_fraction": budget_fraction(metered),
        "max_calls_in_any_60s": max_in_window(metered),
        "span_seconds": (metered[-1] - metered[0]) if metered else 0.0,
    }


def budget_fraction(timestamps: list[float], rpm: int = BUDGET_RPM) -> float | None:
    """Calls made / calls allowed over the whole 60 s windows from the first call on.

    The last, partial window (the backlog running out) is left out; None if there is no whole
    window (a quick run).
    """
    if not timestamps:
        return None
    windows = int((timestamps[-1] - timestamps[0]) // WINDOW)
    if windows < 1:
        return None
    end = timestamps[0] + windows * WINDOW
    used = sum(1 for t in timestamps if t < end)
    return used / (rpm * windows)


def fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f} %"
