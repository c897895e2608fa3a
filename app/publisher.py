"""Hand verified events to Celery: one message per event, task id = webhookEventId.

Publishing does not retry: when the broker cannot take a message the receiver answers 503 at
once, and LINE redelivers the whole request (duplicates are dropped by the worker).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

from kombu.exceptions import KombuError, OperationalError

from workers import events
from workers.queues import EVENTS_QUEUE, PROCESS_EVENT_TASK


class BrokerUnavailable(Exception):
    """The broker refused or did not answer; nothing can be promised to LINE."""


class EventPublisher(Protocol):
    def publish(self, channel_id: str, events: list[dict[str, Any]]) -> None: ...


class CeleryEventPublisher:
    """Publishes through Celery; after a broker failure, checks the broker first for a while.

    kombu's Redis connections retry a refused connection with backoff (about 6 s here), which
    would hold every gunicorn thread for that long during an outage. After one failure, each
    request first asks `probe` (a Redis PING without retries); while that fails the answer is
    an immediate 503, and the first success closes the circuit again.
    """

    def __init__(self, celery_app, probe: Callable[[], object] | None = None,
                 suspect_seconds: float = 30.0) -> None:
        self._celery = celery_app
        self._probe = probe
        self._suspect_seconds = suspect_seconds
        self._suspect_until = 0.0

    def publish(self, channel_id: str, batch: list[dict[str, Any]]) -> None:
        if self._probe is not None and time.monotonic() < self._suspect_until:
            try:
                self._probe()
            except Exception as exc:  # any failure to reach the broker: do not try to publish
                raise BrokerUnavailable(type(exc).__name__) from None
            self._suspect_until = 0.0
        try:
            self._send(channel_id, batch)
        except BrokerUnavailable:
            self._suspect_until = time.monotonic() + self._suspect_seconds
            raise

    def _send(self, channel_id: str, batch: list[dict[str, Any]]) -> None:
        """A request's messages (and their task-sent events) go to Redis in one pipelined
        round trip through kombu's `Producer.batch()`; a failure anywhere in it is a 503 and
        LINE redelivers the whole request. A short kwargsrepr so Celery does not saferepr
        every event for Flower and the worker's log (the full event is in the message)."""
        try:
            with self._celery.producer_or_acquire() as producer, producer.batch():
                for event in batch:
                    event_id = events.event_id(event)
                    self._celery.send_task(
                        PROCESS_EVENT_TASK,
                        kwargs={"channel_id": channel_id, "event": event},
                        kwargsrepr=f"{events.event_type(event)} {event_id} channel {channel_id}",
                        task_id=event_id,
                        queue=EVENTS_QUEUE,
                        retry=False,
                        producer=producer,
                        # The message goes straight to the queue's Redis list (Celery's direct
                        # routing); the worker declares its queues, so skipping kombu's
                        # per-message declare check saves ~10 % of a 5-event request's CPU.
                        declare=[],
                    )
        except (OperationalError, KombuError, OSError) as exc:
            raise BrokerUnavailable(type(exc).__name__) from None
        except Exception as exc:  # redis-py errors surface unwrapped on some paths
            if type(exc).__module__.startswith(("redis", "kombu")):
                raise BrokerUnavailable(type(exc).__name__) from None
            raise
