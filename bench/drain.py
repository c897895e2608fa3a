"""Part 2: how fast one worker (Procfile settings) applies follow events for known users.

Known users are registered in the sandbox (INSTORE + LINE profiles, one add-customer call each)
and put in linecap's customer cache with `StateStore.cache_customer`, as a previous follow
would have. Budget effectively unlimited. Baseline: no-op tasks, same messages, same broker,
same worker flags. Runs alternate (no-op, linecap, linecap-fanout, no-op, ...) so drift hits
all alike. "linecap-fanout" queues the same events as 5-event requests do (one fan-out message
per 5 events, split by the worker), to show what the receiver's saving costs the worker.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import profiling
from bench.bodies import CHANNEL_ID, line_event, new_user_id
from bench.cpu import cores, cpu_window, process_ticks
from bench.procs import children, memory_kib
from bench.queueing import outcomes, publish_events, publish_noop, publisher_app, watch_drain
from bench.sandbox import Sandbox
from bench.stack import BenchStack
from bench.stats import median
from config import load_settings
from core.store.state import StateStore

UNLIMITED_RPM = "100000000"
KINDS = ("noop", "linecap", "linecap-fanout")
FANOUT_EVENTS_PER_REQUEST = 5


@dataclass(frozen=True)
class DrainPlan:
    events: int
    repeats: int
    profile_events: int


class DrainBench:
    def __init__(self, stack: BenchStack, plan: DrainPlan, log: Any) -> None:
        self.stack = stack
        self.plan = plan
        self.log = log
        self.redis = stack.redis.client()

    def run(self) -> dict[str, Any]:
        sandbox = self.stack.start_capillary("capillary-part2")
        users = [new_user_id() for _ in range(self.plan.events)]
        started = time.perf_counter()
        ids = sandbox.register_many(users)
        self.log(f"part 2: {len(ids)} known users registered in "
                 f"{time.perf_counter() - started:.1f}s")
        env = self.stack.env(capillary_url=sandbox.url, line_url=self.stack.start_line(),
                             CAPILLARY_RATE_LIMIT_RPM=UNLIMITED_RPM)
        self.redis.flushdb()
        settings = load_settings(env)
        state = StateStore(self.redis, settings.event_dedup_ttl_seconds,
                           settings.customer_cache_ttl_seconds, settings.user_lock_seconds)
        for user, customer_id in ids.items():
            state.cache_customer(CHANNEL_ID, user, customer_id)
        celery_app = publisher_app(env)
        runs: dict[str, list[dict[str, Any]]] = {kind: [] for kind in KINDS}
        memory: dict[str, Any] = {}
        for i in range(self.plan.repeats):
            for kind in KINDS:
                result = self._drain(kind, users, env, celery_app, sandbox,
                                     keep_memory=i == self.plan.repeats - 1)
                memory[kind] = result.pop("memory", None) or memory.get(kind)
                runs[kind].append(result)
                self.log(f"part 2 {kind} #{i + 1}: {result['rate']:.1f} events/s "
                         f"({result['seconds']:.1f}s), other processes "
                         f"{result['cpu']['other_cores']:.2f} cores")
        profiles = {}
        if self.plan.profile_events:
            for kind in ("noop", "linecap"):
                profiles[kind] = self._profile(kind, users, env, celery_app, sandbox)
        return {
            "events": self.plan.events, "runs": runs, "memory": memory, "profile": profiles,
            "median_rate": {k: median(r["rate"] for r in v) for k, v in runs.items()},
        }

    def _drain(self, kind: str, users: list[str], env: dict[str, str], celery_app,
               sandbox: Sandbox, keep_memory: bool = False,
               profile_dir: Path | None = None) -> dict[str, Any]:
        batch = [line_event(user) for user in users]
        if kind == "noop":
            publish_noop(celery_app, CHANNEL_ID, batch)
        else:
            publish_events(celery_app, CHANNEL_ID, batch,
                           per_request=FANOUT_EVENTS_PER_REQUEST if kind == "linecap-fanout" else 1)
        seq = sandbox.last_seq()
        module = "bench.noop_app" if kind == "noop" else "workers.celery_app"
        worker = self.stack.start_worker(f"worker-{kind}", module, env)
        groups = {"celery main": [worker.pid], "celery pool": children(worker.pid),
                  "redis": [self.stack.redis.pid or 0], "capillary sandbox": [sandbox.pid]}
        spies = self._spy(worker.pid, groups["celery pool"], kind, profile_dir)
        try:
            before = {name: process_ticks(pids) for name, pids in groups.items()}
            commands = self._redis_commands()
            with cpu_window() as window:
                result = watch_drain(self.redis, len(batch), timeout=max(120, len(batch) / 20))
            result["cpu"] = window.result
            served = self._redis_commands() - commands - result.pop("poll_commands") - 1
            result["redis_commands_per_event"] = served / len(batch)
            result["cpu_by_process"] = {
                name: cores(process_ticks(pids) - before[name], window.result["seconds"])
                for name, pids in groups.items()}
            if keep_memory:
                result["memory"] = {"main": memory_kib(worker.pid),
                                    "children": [memory_kib(p) for p in children(worker.pid)]}
        finally:
            for spy in spies:
                spy.wait(30)
            self.stack.stop(worker)
        if kind != "noop":
            result["outcomes"] = outcomes(self.redis, (e["webhookEventId"] for e in batch))
            calls = sandbox.calls(since=seq)
            result["capillary_calls"] = len(calls)
            result["calls_per_event"] = len(calls) / len(batch)
        return result

    def _redis_commands(self) -> int:
        """Commands Redis has served (INFO commandstats), the bench's own polling included."""
        return sum(int(v["calls"]) for v in self.redis.info("commandstats").values())

    @staticmethod
    def _spy(main: int, pool: list[int], kind: str, out_dir: Path | None) -> list:
        if out_dir is None:
            return []
        targets = [(main, f"{kind}-main-{main}"), *((p, f"{kind}-pool-{p}") for p in pool)]
        spies = [profiling.record(pid, 8, out_dir / f"{name}.txt") for pid, name in targets]
        return [spy for spy in spies if spy is not None]

    def _profile(self, kind: str, users: list[str], env: dict[str, str], celery_app,
                 sandbox: Sandbox) -> dict[str, Any]:
        """py-spy on every pool process during a separate, unmeasured drain."""
        out_dir = self.stack.workdir / "profiles"
        out_dir.mkdir(exist_ok=True)
        for old in out_dir.glob(f"{kind}-*.txt"):
            old.unlink()
        self._drain(kind, users[: self.plan.profile_events], env, celery_app, sandbox,
                    profile_dir=out_dir)
        return {role: profiling.summarize(sorted(out_dir.glob(f"{kind}-{role}-*.txt")))
                for role in ("main", "pool")}
