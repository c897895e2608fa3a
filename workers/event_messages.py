"""The Celery messages that carry webhook events, shared by the receiver and the fan-out task.

Every event is applied by its own `process_event` message whose task id is the
webhookEventId (the worker's dedup key). A request with several events reaches the broker as
one `fan_out_events` message instead, and a worker turns it into the per-event messages: the
receiver then pays for one message per request, not one per event (docs/BENCHMARKS.md).
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from kombu import Producer
from kombu.exceptions import KombuError, OperationalError

from core.line import events
from workers.queues import EVENT_BATCHES_QUEUE, EVENTS_QUEUE, FAN_OUT_TASK, PROCESS_EVENT_TASK


def send_events(celery_app: Celery, channel_id: str, batch: list[dict[str, Any]]) -> None:
    """One `process_event` message per event, all (and their task-sent events) in one
    pipelined Redis round trip through kombu's `Producer.batch()`: a failure sends none.
    Broker errors propagate unchanged."""
    with celery_app.producer_or_acquire() as producer, producer.batch():
        for event in batch:
            event_id = events.event_id(event)
            _send(celery_app, producer, PROCESS_EVENT_TASK, EVENTS_QUEUE, event_id,
                  {"channel_id": channel_id, "event": event},
                  f"{events.event_type(event)} {event_id} channel {channel_id}")


def send_fan_out(celery_app: Celery, channel_id: str, batch: list[dict[str, Any]]) -> None:
    """One message carrying the whole batch (with its task-sent event, one round trip), to
    its own queue so that a worker fans it out between two events of a backlog rather than
    behind all of it. Broker errors propagate."""
    ids = [events.event_id(event) for event in batch]
    with celery_app.producer_or_acquire() as producer, producer.batch():
        _send(celery_app, producer, FAN_OUT_TASK, EVENT_BATCHES_QUEUE,
              f"batch-{ids[0]}-{len(ids)}", {"channel_id": channel_id, "events": batch},
              f"{len(ids)} events {ids[0]}..{ids[-1]} channel {channel_id}")


def is_broker_error(exc: BaseException) -> bool:
    """kombu wraps most broker failures; redis-py errors surface unwrapped on some paths."""
    if isinstance(exc, OperationalError | KombuError | OSError):
        return True
    return type(exc).__module__.startswith(("redis", "kombu"))


def _send(celery_app: Celery, producer: Producer, task: str, queue: str, task_id: str,
          kwargs: dict[str, Any], kwargsrepr: str) -> None:
    """How every event message is sent. A short kwargsrepr, so Celery does not saferepr the
    events for Flower and the worker's log (they are in the message). No retry: the caller
    answers a broker failure (503, or a requeued fan-out)."""
    celery_app.send_task(
        task, kwargs=kwargs, kwargsrepr=kwargsrepr, task_id=task_id, queue=queue,
        retry=False, producer=producer,
        # The message goes straight to the queue's Redis list (Celery's direct routing); the
        # worker declares its queues, so skipping kombu's per-message declare check saves
        # ~10 % of a 5-event request's CPU.
        declare=[],
    )
