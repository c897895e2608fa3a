"""Fill the broker queue before a worker starts, then time how fast the worker empties it.

Filling first means the figure is the worker's rate alone: not the publisher's, and not the
worker's start-up (the clock starts when the first message leaves the queue).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable
from typing import Any

import redis

from app.publisher import CeleryEventPublisher
from bench.procs import BenchError
from config import load_settings
from core.line import events as event_fields
from core.store.delayed_jobs import DUE as DELAYED_DUE
from core.store.delayed_jobs import MOVING as DELAYED_MOVING
from workers.celery_app import make_celery
from workers.messages import send_events
from workers.registry import EVENT_BATCHES_QUEUE, EVENTS_QUEUE

NOOP_TASK = "bench.noop"  # the baseline task (bench.noop_app)
UNACKED_KEY = "unacked"  # kombu's Redis transport: messages delivered and not yet acked


def publisher_app(env: dict[str, str]):
    """A Celery app configured exactly as the receiver's, for publishing from the bench."""
    return make_celery(load_settings(env))


def publish_events(celery_app, channel_id: str, batch: list[dict[str, Any]],
                   per_request: int = 1) -> None:
    """The messages the receiver queues for requests of `per_request` events each: one
    `process_event` message per event (published 100 to a round trip, as the fan-out task
    does) for single-event requests, else one fan-out message per request."""
    if per_request == 1:
        for start in range(0, len(batch), 100):
            send_events(celery_app, channel_id, batch[start:start + 100])
        return
    publisher = CeleryEventPublisher(celery_app)
    for start in range(0, len(batch), per_request):
        publisher.publish(channel_id, batch[start:start + per_request])


def publish_noop(celery_app, channel_id: str, batch: list[dict]) -> None:
    """The same messages, addressed to the no-op task."""
    for event in batch:
        celery_app.send_task(NOOP_TASK, kwargs={"channel_id": channel_id, "event": event},
                             task_id=event_fields.event_id(event), queue=EVENTS_QUEUE,
                             retry=False)


def watch_drain(client: redis.Redis, total: int, timeout: float,
                poll: float = 0.01) -> dict[str, float]:
    """Seconds from the first message leaving the queues to nothing queued, unacked or
    waiting in Redis to run again (core.store.delayed_jobs).

    `total` is the number of events; the queues may hold them as fan-out messages, which
    the worker turns into per-event messages on the way, so both queues are watched.
    """
    started = time.perf_counter()
    first: float | None = None
    initial: int | None = None
    commands = 0  # our own polling, for whoever counts Redis commands
    while True:
        pipe = client.pipeline(transaction=False)
        pipe.llen(EVENTS_QUEUE).llen(EVENT_BATCHES_QUEUE).hlen(UNACKED_KEY)
        pipe.zcard(DELAYED_DUE).zcard(DELAYED_MOVING)
        events_queued, batches_queued, unacked, due, moving = pipe.execute()
        commands += 5
        queued = events_queued + batches_queued + due + moving  # waits in Redis count too
        now = time.perf_counter()
        if initial is None:
            initial = queued
        if first is None and (queued < initial or unacked):
            first = now
        if queued == 0 and unacked == 0:
            break
        if now - started > timeout:
            raise BenchError(f"queue not drained after {timeout:g}s ({queued} still queued)")
        time.sleep(poll)
    seconds = now - (first if first is not None else started)
    return {"seconds": seconds, "events": total, "rate": total / seconds if seconds else 0.0,
            "poll_commands": commands}


def outcomes(client: redis.Redis, event_ids: Iterable[str]) -> dict[str, int]:
    """How each event ended, as linecap recorded it (`linecap:event:<id>`)."""
    ids = list(event_ids)
    counts: Counter[str] = Counter()
    for start in range(0, len(ids), 1000):
        keys = [f"linecap:event:{i}" for i in ids[start:start + 1000]]
        counts.update(value or "missing" for value in client.mget(keys))
    return dict(counts)
