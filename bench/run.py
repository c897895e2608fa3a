"""One bench run: start the shared pieces, run the parts in order, collect every figure."""

from __future__ import annotations

import gzip
import json
import shutil
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.backfill import BackfillBench
from bench.budget import BudgetBench
from bench.drain import DrainBench
from bench.machine import machine, versions
from bench.plans import FULL, QUICK
from bench.receiver import ReceiverBench
from bench.stack import BenchStack, web_command, worker_command
from cli.localstack.embedded_redis import find_redis_server


def run_all(workdir: Path, quick: bool, parts: set[int], log: Callable[[str], None],
            command: str) -> dict[str, Any]:
    plans = QUICK if quick else FULL
    started = time.monotonic()
    results: dict[str, Any] = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "mode": plans.name, "command": command, "workdir": str(workdir),
        "machine": machine(), "parts": {},
        "commands": {
            "web": " ".join(web_command("app:create_app()", 0)),
            "baseline web": " ".join(web_command("bench.sync_receiver:create_app()", 0)),
            "worker": " ".join(worker_command("workers.celery_app", "NAME")),
            "baseline worker": " ".join(worker_command("bench.noop_app", "NAME")),
        },
        "plans": {"receiver": plans.receiver.__dict__, "drain": plans.drain.__dict__,
                  "budget": plans.budget.__dict__, "backfill": plans.backfill.__dict__},
    }

    def save() -> None:
        """What the run has so far (`--report-only` renders it): a part that fails keeps the
        ones before it."""
        results["elapsed_seconds"] = time.monotonic() - started
        (workdir / "results.json").write_text(json.dumps(results, indent=1))

    stack = BenchStack(workdir).start()
    log(f"redis-server {stack.redis.url} (data and logs in {workdir})")
    try:
        results["versions"] = versions(stack.redis.client(), find_redis_server())
        budget = BudgetBench(stack, plans.budget, log)
        backfill = BackfillBench(stack, plans.backfill, log)
        # Early: the sandboxes' 60 s rate windows must forget the set-up.
        if 3 in parts:
            budget.prepare()
        if 5 in parts:
            backfill.prepare()
        if 1 in parts:
            results["parts"]["receiver"] = _timed(ReceiverBench(stack, plans.receiver, log).run)
            save()
        if 2 in parts:
            results["parts"]["drain"] = _timed(DrainBench(stack, plans.drain, log).run)
            save()
        if 3 in parts:
            results["parts"]["budget"] = _timed(budget.run)
            save()
        if 5 in parts:
            results["parts"]["backfill"] = _timed(backfill.run)
            save()
    finally:
        stack.close()
        _compact(workdir)
    results["elapsed_seconds"] = time.monotonic() - started
    return results


def _compact(workdir: Path) -> None:
    """Drop Redis's data (the queued test messages) and gzip big logs: runs add up."""
    shutil.rmtree(workdir / "redis", ignore_errors=True)
    for log in (workdir / "logs").glob("*.log"):
        if log.stat().st_size > 1_000_000:
            with open(log, "rb") as raw, gzip.open(f"{log}.gz", "wb") as packed:
                shutil.copyfileobj(raw, packed)
            log.unlink()


def _timed(run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    started = time.monotonic()
    result = run()
    result["elapsed_seconds"] = time.monotonic() - started
    return result
