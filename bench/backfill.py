"""Part 5: a back-fill of followers (70 % new, 30 % already in Capillary) under a 100 RPM budget,
time-scaled, and live follows' end-to-end latency while it runs.

Time scaling: linecap's budget and the sandbox's own limit are both 100 × `scale` calls per
minute, so a real second stands for `scale` seconds of a 100 RPM cluster. Counts of calls do
not depend on the scale; durations are multiplied back. Live latency is not scaled: each live
follow's own calls run at loopback speed, what is measured is whether they wait behind the
back-fill's.

Phases, on one web process and one worker (the Procfile's commands):
1. live follows alone (the latency baseline);
2. the same back-fill mix sent the old way, one follow task per follower (the calls baseline);
3. `linecap backfill-followers` over the LINE sandbox's followers, live follows sent meanwhile.
Every count comes from the sandbox's call log.
"""

from __future__ import annotations

import random
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import requests

from bench.bodies import CHANNEL_ID, line_event, new_user_id, signed_request
from bench.budget import call_user, customer_users
from bench.procs import PYTHON, ROOT, BenchError
from bench.queueing import publisher_app
from bench.stack import BenchStack
from bench.stats import percentile
from config import load_settings
from core.capillary.transport import api_group
from core.line import events as event_fields
from core.store.dead_letters import DeadLetterStore
from core.store.rate_budget import BULK
from core.store.state import StateStore
from tasks.events.backfill import backfill_event
from workers.messages import send
from workers.registry import PROCESS_EVENT_TASK

BASE_RPM = 100
WINDOW = 61.0  # linecap's budget window (core.store.rate_budget)
PROJECTED_FOLLOWERS = 100_000
SUBSCRIPTION_ROUTE = "/v2/customers/{customer_id}/subscriptions"  # as the call log names it


@dataclass(frozen=True)
class BackfillPlan:
    followers: int
    single_followers: int  # the calls baseline: the same mix, one task per follower
    existing_fraction: float
    scale: int
    live_follows: int  # per phase
    live_interval: float  # real seconds between live follows
    timeout: float


class BackfillBench:
    """`prepare()` early (the sandbox's 60 s window must forget the set-up), `run()` later."""

    def __init__(self, stack: BenchStack, plan: BackfillPlan, log: Callable[[str], None]) -> None:
        self.stack = stack
        self.plan = plan
        self.log = log
        self.redis = stack.redis.client()
        self.prepared_at = 0.0

    @property
    def rpm(self) -> int:
        return BASE_RPM * self.plan.scale

    def prepare(self) -> None:
        plan = self.plan
        self.sandbox = self.stack.start_capillary("capillary-part5")
        self.line_url = self.stack.start_line("line-sandbox-part5")
        self.followers = _mix(plan.followers, plan.existing_fraction)
        self.single = _mix(plan.single_followers, plan.existing_fraction)
        self.live = {"alone": [new_user_id() for _ in range(plan.live_follows)],
                     "during": [new_user_id() for _ in range(plan.live_follows)]}
        everyone = list(self.followers) + list(self.single)
        random.Random(5).shuffle(everyone)  # LINE lists followers in the order they came
        self._befriend(everyone)
        existing = [u for u, s in {**self.followers, **self.single}.items() if s == "existing"]
        self.sandbox.register_many(existing)
        self.prepared_at = time.monotonic()
        self.log(f"part 5: {len(everyone)} followers on LINE, {len(existing)} of them "
                 "already in Capillary")

    def run(self) -> dict[str, Any]:
        wait = self.prepared_at + WINDOW - time.monotonic()
        if wait > 0:
            self.log(f"part 5: waiting {wait:.0f}s for the sandbox's 60 s window to clear")
            time.sleep(wait)
        self.sandbox.faults(rpm_limit=self.rpm)
        env = self.stack.env(capillary_url=self.sandbox.url, line_url=self.line_url,
                             CAPILLARY_RATE_LIMIT_RPM=str(self.rpm))
        self.redis.flushdb()
        settings = load_settings(env)
        self.state = StateStore(self.redis, settings.event_dedup_ttl_seconds,
                                settings.customer_cache_ttl_seconds, settings.user_lock_seconds)
        web, url = self.stack.start_web("web-part5", "app:create_app()", env)
        worker = self.stack.start_worker("worker-part5", "workers.celery_app", env)
        try:
            seq = self.sandbox.last_seq()
            alone = self._live_follows(url, self.live["alone"])
            self._wait_for(lambda: self._followed(self.live["alone"]), "live follows")
            single_seq = self.sandbox.last_seq()
            started = time.time()
            self._send_single(env, int(started * 1000))
            self._wait_for(lambda: self._synced(self.single, int(started * 1000)),
                           "the one-by-one back-fill")
            single_seconds = time.time() - started
            backfill_seq = self.sandbox.last_seq()
            started = time.time()
            cli = self._start_cli(env)
            time.sleep(2.0)
            during = self._live_follows(url, self.live["during"])
            self._wait_for(lambda: self._synced(self.followers, int(started * 1000)),
                           "the back-fill")
            backfill_seconds = time.time() - started
            cli_output = _finish(cli)
        finally:
            self.stack.stop(worker)
            self.stack.stop(web)
        calls = self.sandbox.calls(since=seq)
        customers = customer_users(self.sandbox)
        result = {
            "plan": self.plan.__dict__, "rpm": self.rpm,
            "live_reserve": settings.live_reserve_percent / 100,
            "cli": cli_output,
            "latency_alone": _latencies(alone, calls, customers),
            "latency_during": _latencies(during, calls, customers),
            "single": _calls_for(self.single, _since(calls, single_seq, backfill_seq),
                                 customers, single_seconds),
            "batched": _calls_for(self.followers, _since(calls, backfill_seq, None), customers,
                                  backfill_seconds),
            "status_429": sum(1 for c in calls if c["status"] == 429),
            "dead_letters": DeadLetterStore(self.redis).count(),
        }
        result["batched"]["bulk_share_used"] = _share_used(
            _since(calls, backfill_seq, None), self.followers, customers,
            self.rpm * (1 - result["live_reserve"]))
        self.log(f"part 5: {result['batched']['per_1000']:.0f} calls per 1,000 followers "
                 f"(one by one: {result['single']['per_1000']:.0f}); live p99 "
                 f"{result['latency_during'].get('p99', float('nan')):.0f} ms during, "
                 f"{result['latency_alone'].get('p99', float('nan')):.0f} ms alone")
        return result

    # -- set-up -----------------------------------------------------------------------------
    def _befriend(self, users: list[str]) -> None:
        """Friends of the channel in the LINE sandbox, without a webhook (they followed before
        linecap was connected)."""
        local = threading.local()

        def befriend(user: str) -> None:
            session = getattr(local, "session", None) or requests.Session()
            local.session = session
            response = session.post(f"{self.line_url}/sandbox/follow", timeout=10, json={
                "channel_id": CHANNEL_ID, "user_id": user, "deliver": False})
            response.raise_for_status()

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(befriend, users))

    # -- load -------------------------------------------------------------------------------
    def _live_follows(self, url: str, users: list[str]) -> dict[str, float]:
        """A follow webhook per user, `live_interval` apart; user -> when it was sent."""
        sent: dict[str, float] = {}
        for user in users:
            self._befriend([user])
            body, signature = signed_request([line_event(user)])
            sent[user] = time.time()
            # A connection of its own, as LINE opens them: one kept idle for the interval
            # would meet gunicorn's 2 s keep-alive closing it.
            response = requests.post(f"{url}/webhooks/line/{CHANNEL_ID}", data=body, timeout=10,
                                    headers={"X-Line-Signature": signature,
                                             "Content-Type": "application/json"})
            if response.status_code != 200:
                raise BenchError(f"webhook answered {response.status_code}: {response.text}")
            time.sleep(self.plan.live_interval)
        return sent

    def _send_single(self, env: dict[str, str], now_ms: int) -> None:
        """The back-fill as it was: one follow task per follower, in the bulk lane."""
        app = publisher_app(env)
        for user in self.single:
            event = backfill_event(CHANNEL_ID, user, now_ms)
            send(app, PROCESS_EVENT_TASK, {"channel_id": CHANNEL_ID, "event": event},
                 event_fields.event_id(event), lane=BULK)

    def _start_cli(self, env: dict[str, str]) -> subprocess.Popen:
        linecap = str(ROOT / ".venv" / "bin" / "linecap")
        argv = [linecap, "backfill-followers", "--channel", CHANNEL_ID]
        if not (ROOT / ".venv" / "bin" / "linecap").exists():
            argv = [PYTHON, "-c", "import sys; from cli.main import main; sys.exit(main())",
                    *argv[1:]]
        return subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)

    # -- progress ---------------------------------------------------------------------------
    def _followed(self, users: list[str]) -> bool:
        records = [self.state.user_record(CHANNEL_ID, u) for u in users]
        return all(r is not None and r.state == "followed" for r in records)

    def _synced(self, users: dict[str, str], started_ms: int) -> bool:
        """Every follower's back-fill event (ids are per user and day) ended or dead-lettered."""
        ids = [(event_fields.event_id(backfill_event(CHANNEL_ID, u, started_ms)), u)
               for u in users]
        done = sum(1 for ended, _ in self.state.batch_progress(CHANNEL_ID, ids) if ended)
        return done + DeadLetterStore(self.redis).count() >= len(users)

    def _wait_for(self, done: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + self.plan.timeout
        while not done():
            if time.monotonic() > deadline:
                raise BenchError(f"part 5: {what} not done after {self.plan.timeout:g}s "
                                 f"({DeadLetterStore(self.redis).count()} dead letters)")
            time.sleep(1.0)


def _mix(count: int, existing_fraction: float) -> dict[str, str]:
    existing = round(count * existing_fraction)
    return {new_user_id(): "existing" if i < existing else "new" for i in range(count)}


def _finish(cli: subprocess.Popen) -> str:
    out, _ = cli.communicate(timeout=60)
    if cli.returncode != 0:
        raise BenchError(f"linecap backfill-followers failed:\n{out[-3000:]}")
    return out.strip()[-2000:]


def _since(calls: list[dict[str, Any]], start: int, end: int | None) -> list[dict[str, Any]]:
    return [c for c in calls if c["seq"] > start and (end is None or c["seq"] <= end)]


def _owner(call: dict[str, Any], customers: dict[int, str]) -> str | None:
    """The LINE user a call was for; a batch registration's first item's user."""
    if call["route"] == "/v2/customers/bulk" and isinstance(call.get("body"), list):
        return call_user({**call, "body": call["body"][0] if call["body"] else {}}, customers)
    return call_user(call, customers)


def _calls_for(users: dict[str, str], calls: list[dict[str, Any]], customers: dict[int, str],
               seconds: float) -> dict[str, Any]:
    """Calls made for these followers: per 1,000, per API group, per scenario."""
    mine = [c for c in calls if _owner(c, customers) in users]
    by_scenario: Counter[str] = Counter(users[_owner(c, customers) or ""] for c in mine
                                        if c["route"] != "/v2/customers/bulk")
    groups: Counter[str] = Counter(api_group(c["method"], c["route"]) for c in mine)
    routes: Counter[str] = Counter(f"{c['method']} {c['route']} {c['status']}" for c in mine)
    per_scenario = Counter(users.values())
    bulk = groups.get("bulk", 0)
    return {
        "followers": len(users), "calls": len(mine), "seconds": seconds,
        "per_1000": 1000 * len(mine) / max(1, len(users)),
        "groups_per_1000": {g: 1000 * n / max(1, len(users)) for g, n in groups.items()},
        "per_follower": {s: by_scenario[s] / n for s, n in per_scenario.items() if n},
        "bulk_calls": bulk, "routes": dict(routes),
        "span_seconds": (max(c["ts"] for c in mine) - min(c["ts"] for c in mine)) if mine
        else 0.0,
    }


def _share_used(calls: list[dict[str, Any]], users: dict[str, str], customers: dict[int, str],
                cap_per_window: float) -> float | None:
    """The back-fill's calls over whole 61 s windows / what the bulk lane may take in them."""
    stamps = sorted(c["ts"] for c in calls if _owner(c, customers) in users)
    if not stamps:
        return None
    windows = int((stamps[-1] - stamps[0]) // WINDOW)
    if windows < 1:
        return None
    end = stamps[0] + windows * WINDOW
    return sum(1 for t in stamps if t < end) / (cap_per_window * windows)


def _latencies(sent: dict[str, float], calls: list[dict[str, Any]],
               customers: dict[int, str]) -> dict[str, Any]:
    """Webhook sent -> the user's subscription written (the sandbox's clock, same machine)."""
    written: dict[str, float] = {}
    for call in calls:
        if call["route"] == SUBSCRIPTION_ROUTE and call["method"] == "POST" \
                and call["status"] == 200:
            user = call_user(call, customers)
            if user in sent and user not in written:
                written[user] = call["ts"]
    values = sorted(1000 * (written[u] - sent[u]) for u in written)
    out: dict[str, Any] = {"count": len(values), "missing": len(sent) - len(values)}
    if values:
        out.update(p50=percentile(values, 50), p99=percentile(values, 99), max=values[-1])
    return out
