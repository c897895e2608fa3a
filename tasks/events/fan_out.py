"""Split a multi-event webhook request into one `process_event` message per event.

The receiver queues such a request as one message (cheaper to answer LINE); this publishes the
per-event messages in one batch. It is idempotent: the per-event task ids are the
webhookEventIds, so a fan-out that runs twice (a worker died after publishing) queues
duplicates that the event task drops, exactly as it drops LINE's redeliveries.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from celery import Celery, current_app
from celery.exceptions import Reject

from core.line import events as event_fields
from workers.failure_policy import Attempts, Job, dead_letter
from workers.messages import is_broker_error, send_events
from workers.outcomes import Outcome
from workers.registry import PROCESS_EVENT_TASK
from workers.runtime import Runtime

log = logging.getLogger("linecap.tasks")

BROKER_PAUSE_SECONDS = 1.0


def fan_out(runtime: Runtime, channel_id: str, events: list[dict[str, Any]],
            celery_app: Celery | None = None) -> Outcome:
    """FANNED_OUT; on a broker outage the message is requeued (Reject), never failed."""
    try:
        send_events(celery_app or current_app, channel_id, events)
    except Exception as exc:
        if not is_broker_error(exc):
            return _dead_letter_each(runtime, channel_id, events, exc)
        # Not acked: the message goes back to its queue (or, if Redis cannot even take
        # that, stays unacked and returns after the visibility timeout). A failed task
        # would be acked and its events lost. The pause keeps an outage from spinning.
        log.warning("broker unavailable during fan-out; requeued",
                    extra={"error": type(exc).__name__, "events": len(events)})
        time.sleep(BROKER_PAUSE_SECONDS)
        raise Reject(type(exc).__name__, requeue=True) from None
    log.info("fanned out %d events", len(events), extra={"events": len(events)})
    return Outcome.FANNED_OUT


def _dead_letter_each(runtime: Runtime, channel_id: str, batch: list[dict[str, Any]],
                      exc: Exception) -> Outcome:
    """A bug, not an outage: keep every event where an operator can see and replay it (a
    replay goes to process_event, as if the fan-out had worked), rather than retry forever."""
    log.exception("fan-out failed; its %d events are dead-lettered", len(batch))
    error = f"fan-out failed: {type(exc).__name__}: {exc}"
    for event in batch:
        job = Job(event_fields.event_id(event), channel_id, event, PROCESS_EVENT_TASK)
        dead_letter(runtime, job, "unexpected", error, Attempts().failed())
    return Outcome.DEAD_LETTERED
