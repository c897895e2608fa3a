"""The Celery entry points for LINE webhook events: one event, or a request's batch of them."""

from __future__ import annotations

from typing import Any

from core.line import events
from tasks.events.apply import apply_event
from tasks.events.backfill import backfill_followers
from tasks.events.fan_out import fan_out
from workers.outcomes import Outcome
from workers.registry import BACKFILL_TASK, FAN_OUT_TASK, PROCESS_EVENT_TASK
from workers.runtime import Runtime
from workers.task_base import linecap_task


def _event_fields(channel_id: str, event: Any) -> dict[str, Any]:
    event = event if isinstance(event, dict) else {}
    return {"webhook_event_id": events.event_id(event), "channel": channel_id,
            "user_id": events.user_id(event)}


@linecap_task(PROCESS_EVENT_TASK, job_id=lambda _, event: events.event_id(event),
              log_fields=_event_fields, counts_as_event=True, noun="event")
def process_event(runtime: Runtime, channel_id: str, event: dict[str, Any]) -> Outcome:
    return apply_event(runtime, channel_id, event)


@linecap_task(FAN_OUT_TASK, job_id=lambda *_: None, payload="events", with_policy=False,
              log_fields=lambda channel_id, _: {"channel": channel_id}, noun="fan-out")
def fan_out_events(runtime: Runtime, channel_id: str, batch: list[dict[str, Any]]) -> Outcome:
    return fan_out(runtime, channel_id, batch)


@linecap_task(BACKFILL_TASK, job_id=lambda *_: None, payload="followers",
              log_fields=lambda channel_id, _: {"channel": channel_id}, noun="back-fill batch")
def backfill_batch(runtime: Runtime, channel_id: str, followers: dict[str, Any]) -> Outcome:
    return backfill_followers(runtime, channel_id, followers)
