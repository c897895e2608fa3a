"""The Celery task of the reconciliation (`reconciliation` queue, bulk lane): one step of a
channel's run. The beat process sends a tick per channel (`step` empty); each step that wants
another sends its continuation (`step` = the run and its next step's number)."""

from __future__ import annotations

from typing import Any

from celery import Celery, current_app

from core.store.rate_budget import BULK
from tasks.followers.reconcile import Reconciler
from tasks.followers.runs import advance
from tasks.followers.sync import bulk_publisher
from workers.messages import send
from workers.outcomes import Outcome
from workers.queue_metrics import queue_depth
from workers.registry import BULK_EVENTS_QUEUE, RECONCILE_TASK
from workers.runtime import Runtime
from workers.task_base import linecap_task


def step_id(channel_id: str, step: Any) -> str | None:
    """A continuation's id (its dead-letter and task id); a tick has none of its own."""
    if isinstance(step, dict) and step.get("run"):
        return f"reconcile-{step['run']}-{step.get('slice')}"
    return None


def send_continuation(celery_app: Celery, channel_id: str, run_id: str, slice_: int) -> None:
    step = {"run": run_id, "slice": slice_}
    send(celery_app, RECONCILE_TASK, {"channel_id": channel_id, "step": step},
         str(step_id(channel_id, step)), lane=BULK)


@linecap_task(RECONCILE_TASK, job_id=step_id, payload="step", with_policy=False,
              log_fields=lambda channel_id, step: {"channel": channel_id},
              noun="reconciliation step")
def reconcile_followers(runtime: Runtime, channel_id: str, step: dict[str, Any]) -> Outcome:
    channel = runtime.channel(channel_id)
    interval = runtime.settings.reconcile_interval(channel_id)
    reconciler = Reconciler(runtime, channel, bulk_publisher(current_app, channel_id),
                            backlog=lambda: queue_depth(runtime.redis, BULK_EVENTS_QUEUE))
    result = advance(runtime, reconciler, step=step or None, interval=interval,
                     start=interval > 0, repair=runtime.settings.reconcile_repair_missing)
    if result.goes_on and result.run is not None:
        send_continuation(current_app, channel_id, result.run.run_id, result.run.slice)
    return Outcome(result.status)
