"""Every Celery message linecap publishes, routed by the task registry.

Webhook events: each event is applied by its own `process_event` message whose task id is the
webhookEventId (the worker's dedup key). A request with several events reaches the broker as
one `fan_out_events` message instead, and a worker turns it into the per-event messages: the
receiver then pays for one message per request, not one per event (docs/BENCHMARKS.md).
Everything else (links, import rows, replays, released follows) is one message through `send`.
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from kombu import Producer
from kombu.exceptions import KombuError, OperationalError

from config import LineChannel
from core.errors import TransientError
from core.line import events
from core.link_request import LinkRequest
from workers.registry import FAN_OUT_TASK, LINK_TASK, PROCESS_EVENT_TASK, queue_for


def send_events(celery_app: Celery, channel_id: str, batch: list[dict[str, Any]]) -> None:
    """One `process_event` message per event, all (and their task-sent events) in one
    pipelined Redis round trip through kombu's `Producer.batch()`: a failure sends none.
    Broker errors propagate unchanged."""
    with celery_app.producer_or_acquire() as producer, producer.batch():
        for event in batch:
            event_id = events.event_id(event)
            _send_batched(celery_app, producer, PROCESS_EVENT_TASK, event_id,
                          {"channel_id": channel_id, "event": event},
                          f"{events.event_type(event)} {event_id} channel {channel_id}")


def send_fan_out(celery_app: Celery, channel_id: str, batch: list[dict[str, Any]]) -> None:
    """One message carrying the whole batch (with its task-sent event, one round trip), to
    its own queue so that a worker fans it out between two events of a backlog rather than
    behind all of it. Broker errors propagate."""
    ids = [events.event_id(event) for event in batch]
    with celery_app.producer_or_acquire() as producer, producer.batch():
        _send_batched(celery_app, producer, FAN_OUT_TASK, f"batch-{ids[0]}-{len(ids)}",
                      {"channel_id": channel_id, "events": batch},
                      f"{len(ids)} events {ids[0]}..{ids[-1]} channel {channel_id}")


def send(celery_app: Celery, task: str, kwargs: dict[str, Any], task_id: str,
         retry: bool = False, lane: str | None = None) -> None:
    """One message to the task's queue in `lane` (workers.registry). Without `retry` a dead
    broker fails at once (a command or an HTTP answer reports it); with it, kombu retries its
    connection for a while."""
    celery_app.send_task(task, kwargs=kwargs, task_id=task_id, queue=queue_for(task, lane),
                         retry=retry, kwargsrepr=short_kwargsrepr(kwargs))


def short_kwargsrepr(kwargs: dict[str, Any]) -> str:
    """What Flower and the worker's log lines show of a message's kwargs: the channel only.
    Payloads carry mobiles, names and LINE ids; the task id already says which job it is."""
    return f"channel {kwargs.get('channel_id')} (payload not shown)"


def enqueue_link(celery_app: Celery, channel: LineChannel, request: LinkRequest,
                 retry: bool = True) -> str:
    """Publish the link task; TransientError when the broker refuses. The task id is the
    link id, so the same request sent twice is one job."""
    link_id = request.link_id(channel)
    try:
        send(celery_app, LINK_TASK,
             {"channel_id": channel.channel_id, "event": request.to_event()}, link_id,
             retry=retry)
    except Exception as exc:
        if is_broker_error(exc):
            raise TransientError(f"could not queue link ({type(exc).__name__})") from None
        raise
    return link_id


def is_broker_error(exc: BaseException) -> bool:
    """kombu wraps most broker failures; redis-py errors surface unwrapped on some paths."""
    if isinstance(exc, OperationalError | KombuError | OSError):
        return True
    return type(exc).__module__.startswith(("redis", "kombu"))


def _send_batched(celery_app: Celery, producer: Producer, task: str, task_id: str,
                  kwargs: dict[str, Any], kwargsrepr: str) -> None:
    """How event messages are sent. A short kwargsrepr, so Celery does not saferepr the
    events for Flower and the worker's log (they are in the message). No retry: the caller
    answers a broker failure (503, or a requeued fan-out)."""
    celery_app.send_task(
        task, kwargs=kwargs, kwargsrepr=kwargsrepr, task_id=task_id, queue=queue_for(task),
        retry=False, producer=producer,
        # The message goes straight to the queue's Redis list (Celery's direct routing); the
        # worker declares its queues, so kombu's per-message declare check is skipped (its
        # cost is in docs/BENCHMARKS.md).
        declare=[],
    )
