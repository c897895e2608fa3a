"""Part 1: webhook acknowledgement, linecap's receiver against an inline-CRM receiver.

For each receiver and batch size: the saturation point from a closed loop with many
connections, then open-loop runs at 50 % and 90 % of it (and at 500 req/s for linecap, the
target), latency measured from each request's due time.
"""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass
from typing import Any

from bench import profiling
from bench.bodies import CHANNEL_ID, new_user_id
from bench.cpu import TICKS_PER_SECOND, cores, cpu_window, process_ticks
from bench.procs import PYTHON, ROOT, BenchError, children, memory_kib
from bench.stack import BenchStack
from bench.stats import median
from workers.registry import EVENT_BATCHES_QUEUE, EVENTS_QUEUE

BASELINE_LATENCY_MS = 150
TARGET_RATE = 500.0


@dataclass(frozen=True)
class ReceiverPlan:
    saturation_seconds: float
    saturation_repeats: int
    open_seconds: float
    open_repeats: int
    baseline_open_seconds: float
    baseline_open_repeats: int
    warmup: float
    profile_seconds: float
    batches: tuple[int, ...] = (1, 5)
    closed_connections: int = 32
    open_connections: int = 128
    baseline_closed_connections: int = 16  # twice its 8 threads: saturated, short queues
    open_preopen: int = 32
    fractions: tuple[float, ...] = (0.5, 0.9)


def run_loadgen(plan: dict[str, Any]) -> dict[str, Any]:
    """One load run in its own process; its JSON result, with the CPU others used meanwhile."""
    budget = plan["duration"] + plan.get("warmup", 1.0) + 60
    with cpu_window() as window:
        done = subprocess.run([PYTHON, "-m", "bench.loadgen", json.dumps(plan)], cwd=ROOT,
                              capture_output=True, text=True, timeout=budget)
    if done.returncode != 0:
        raise BenchError(f"load generator failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["cpu"] = window.result
    return result


class ReceiverBench:
    def __init__(self, stack: BenchStack, plan: ReceiverPlan, log: Any) -> None:
        self.stack = stack
        self.plan = plan
        self.log = log
        self.redis = stack.redis.client()
        self.groups: dict[str, list[int]] = {}

    def run(self) -> dict[str, Any]:
        sandbox = self.stack.start_capillary("capillary-part1")
        users = [new_user_id() for _ in range(200)]
        sandbox.register_many(users)
        sandbox.faults(latency_ms=BASELINE_LATENCY_MS)
        env = self.stack.env(capillary_url=sandbox.url)
        results = {"linecap": self._receiver("linecap", "app:create_app()", env, users, True),
                   "baseline": self._receiver("baseline", "bench.sync_receiver:create_app()",
                                              env, users, False),
                   "ceiling": self._ceiling(env, users)}
        results["baseline_latency_ms"] = BASELINE_LATENCY_MS
        results["plan"] = self.plan.__dict__
        return results

    def _receiver(self, name: str, app_spec: str, env: dict[str, str], users: list[str],
                  is_linecap: bool) -> dict[str, Any]:
        proc, url = self.stack.start_web(f"web-{name}", app_spec, env)
        port = int(url.rsplit(":", 1)[1])
        out: dict[str, Any] = {"batches": {}}
        workers = children(proc.pid)
        self.groups = {"web": [proc.pid, *workers], "redis": [self.stack.redis.pid or 0],
                       **{f"web worker {i + 1}": [pid] for i, pid in enumerate(workers)}}
        try:
            for batch in self.plan.batches:
                out["batches"][str(batch)] = self._batch(name, port, batch, users, is_linecap)
            if is_linecap and self.plan.profile_seconds > 0:
                out["profile"] = self._profile(proc.pid, port, users)
            out["memory"] = {str(pid): memory_kib(pid) for pid in children(proc.pid)}
        finally:
            self.stack.stop(proc)
            self._clear_queue()
        return out

    def _ceiling(self, env: dict[str, str], users: list[str]) -> dict[str, Any]:
        """Saturation of a Flask hello-world under the same gunicorn settings, same load."""
        proc, url = self.stack.start_web("web-hello", "bench.hello_app:create_app()", env)
        port = int(url.rsplit(":", 1)[1])
        self.groups = {"web": [proc.pid, *children(proc.pid)]}
        out: dict[str, Any] = {"batches": {}}
        try:
            for batch in self.plan.batches:
                runs = []
                for i in range(self.plan.saturation_repeats):
                    result = self._run({
                        "host": "127.0.0.1", "port": port,
                        "path": f"/webhooks/line/{CHANNEL_ID}", "events_per_request": batch,
                        "users": users, "warmup": self.plan.warmup, "mode": "closed",
                        "duration": self.plan.saturation_seconds,
                        "connections": self.plan.closed_connections,
                        "preopen": self.plan.closed_connections})
                    self.log(f"part 1 hello-world x{batch} saturation #{i + 1}: "
                             f"{result['throughput']:.1f} req/s, {result['errors']} errors")
                    runs.append(result)
                out["batches"][str(batch)] = {
                    "saturation": runs, "peak": median(r["throughput"] for r in runs)}
        finally:
            self.stack.stop(proc)
        return out

    def _batch(self, name: str, port: int, batch: int, users: list[str],
               is_linecap: bool) -> dict[str, Any]:
        plan = self.plan
        base = {"host": "127.0.0.1", "port": port, "path": f"/webhooks/line/{CHANNEL_ID}",
                "events_per_request": batch, "users": users, "warmup": plan.warmup}
        saturation = []
        for i in range(plan.saturation_repeats):
            connections = (plan.closed_connections if is_linecap
                           else plan.baseline_closed_connections)
            result = self._run({**base, "mode": "closed", "duration": plan.saturation_seconds,
                                "connections": connections, "preopen": connections})
            self.log(f"part 1 {name} x{batch} saturation #{i + 1}: "
                     f"{result['throughput']:.1f} req/s, {result['errors']} errors, "
                     f"other processes {result['cpu']['other_cores']:.2f} cores")
            saturation.append(result)
            self._clear_queue()
        peak = median(r["throughput"] for r in saturation) or 1.0
        rates = {f"{int(f * 100)}%": f * peak for f in plan.fractions}
        if is_linecap:
            rates["500/s"] = TARGET_RATE
        seconds = plan.open_seconds if is_linecap else plan.baseline_open_seconds
        repeats = plan.open_repeats if is_linecap else plan.baseline_open_repeats
        open_runs: dict[str, list[dict[str, Any]]] = {}
        for label, rate in rates.items():
            open_runs[label] = []
            for i in range(repeats):
                result = self._run({**base, "mode": "open", "rate": rate, "duration": seconds,
                                    "connections": plan.open_connections,
                                    "preopen": plan.open_preopen})
                lat = result["latency_ms"]
                self.log(f"part 1 {name} x{batch} {label} ({rate:.1f}/s) #{i + 1}: "
                         f"p50 {lat.get('p50', float('nan')):.2f} ms, "
                         f"p99 {lat.get('p99', float('nan')):.2f} ms, "
                         f"{result['throughput']:.1f} req/s done, {result['errors']} errors, "
                         f"other processes {result['cpu']['other_cores']:.2f} cores")
                open_runs[label].append(result)
                self._clear_queue()
        return {"saturation": saturation, "peak": peak, "rates": rates, "open": open_runs}

    def _run(self, plan: dict[str, Any]) -> dict[str, Any]:
        """run_loadgen, plus the cores the web processes and Redis used meanwhile."""
        before = {name: process_ticks(pids) for name, pids in self.groups.items()}
        result = run_loadgen(plan)
        ticks = {name: process_ticks(pids) - before[name] for name, pids in self.groups.items()}
        result["cpu_by_process"] = {name: cores(t, result["cpu"]["seconds"])
                                    for name, t in ticks.items()}
        result["web_cpu_ms_per_request"] = (
            1000.0 * ticks["web"] / TICKS_PER_SECOND / max(result["answered"], 1))
        return result

    def _profile(self, master: int, port: int, users: list[str]) -> dict[str, Any]:
        """py-spy on both web workers during a 500 req/s run (not used for any figure)."""
        out_dir = self.stack.workdir / "profiles"
        out_dir.mkdir(exist_ok=True)
        profiles = {}
        for batch in self.plan.batches:
            paths = [out_dir / f"web-x{batch}-{pid}.txt" for pid in children(master)]
            spies = [profiling.record(int(p.stem.rsplit("-", 1)[1]), self.plan.profile_seconds,
                                      p) for p in paths]
            time.sleep(0.5)
            run_loadgen({"host": "127.0.0.1", "port": port, "path": f"/webhooks/line/{CHANNEL_ID}",
                         "events_per_request": batch, "users": users, "warmup": 0.2,
                         "mode": "open", "rate": TARGET_RATE,
                         "duration": self.plan.profile_seconds, "connections": 128,
                         "preopen": self.plan.open_preopen})
            for spy in spies:
                if spy is not None:
                    spy.wait(30)
            profiles[str(batch)] = profiling.summarize(paths)
            self._clear_queue()
        return profiles

    def _clear_queue(self) -> None:
        """Drop what the runs queued (no worker runs in part 1), so Redis stays small."""
        self.redis.delete(EVENTS_QUEUE, EVENT_BATCHES_QUEUE)


def web_worker_memory(result: dict[str, Any]) -> dict[str, int]:
    """The largest RSS/PSS among a receiver's web workers."""
    memory = list(result.get("memory", {}).values())
    return {key: max((m.get(key, 0) for m in memory), default=0)
            for key in ("rss_kib", "pss_kib")}

