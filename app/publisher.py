"""Hand verified events to Celery: one message per event, task id = webhookEventId.

Publishing does not retry: when the broker cannot take a message the receiver answers 503 at
once, and LINE redelivers the whole request (duplicates are dropped by the worker).
"""

from __future__ import annotations

from typing import Any, Protocol

from kombu.exceptions import KombuError, OperationalError

from workers import events
from workers.queues import EVENTS_QUEUE, PROCESS_EVENT_TASK


class BrokerUnavailable(Exception):
    """The broker refused or did not answer; nothing can be promised to LINE."""


class EventPublisher(Protocol):
    def publish(self, channel_id: str, events: list[dict[str, Any]]) -> None: ...


class CeleryEventPublisher:
    def __init__(self, celery_app) -> None:
        self._celery = celery_app

    def publish(self, channel_id: str, batch: list[dict[str, Any]]) -> None:
        try:
            for event in batch:
                self._celery.send_task(
                    PROCESS_EVENT_TASK,
                    kwargs={"channel_id": channel_id, "event": event},
                    task_id=events.event_id(event),
                    queue=EVENTS_QUEUE,
                    retry=False,
                )
        except (OperationalError, KombuError, OSError) as exc:
            raise BrokerUnavailable(type(exc).__name__) from None
        except Exception as exc:  # redis-py errors surface unwrapped on some paths
            if type(exc).__module__.startswith(("redis", "kombu")):
                raise BrokerUnavailable(type(exc).__name__) from None
            raise
