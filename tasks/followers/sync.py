"""The back-fill's core, shared by `linecap backfill-followers` and the reconciliation: a
follower becomes a synthetic follow through the normal event task, in the bulk lane.

A synthetic event is stamped with the time LINE's list was read, not the time it is applied:
a real unfollow that happened after the list was read is newer and still wins (per-user order),
and one from before is older and loses to the follower the list showed.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from celery import Celery

from core.line import events
from core.line.builders import user_event
from core.store.rate_budget import BULK
from workers.messages import send
from workers.registry import PROCESS_EVENT_TASK

Publish = Callable[[dict[str, Any]], None]


def backfill_event(channel_id: str, user_id: str, now_ms: int) -> dict[str, Any]:
    """The back-fill's follow: an id fixed per user and day, so a second back-fill on the
    same day queues nothing new."""
    day = datetime.fromtimestamp(now_ms / 1000, UTC).strftime("%Y%m%d")
    return user_event("follow", user_id, timestamp_ms=now_ms,
                      event_id=f"backfill-{channel_id}-{user_id}-{day}")


def reconcile_event(kind: str, run_id: str, user_id: str, listed_at_ms: int
                    ) -> dict[str, Any]:
    """A reconciliation run's follow (or, repairing drift, unfollow): an id fixed per run and
    user, so a page read twice in one run queues the user once in effect."""
    prefix = "reconcile" if kind == "follow" else "reconcile-out"
    return user_event(kind, user_id, timestamp_ms=listed_at_ms,
                      event_id=f"{prefix}-{run_id}-{user_id}")


def bulk_publisher(celery_app: Celery, channel_id: str) -> Publish:
    """Publish synthetic events to the event task's bulk-lane queue, task id = event id."""

    def publish(event: dict[str, Any]) -> None:
        send(celery_app, PROCESS_EVENT_TASK, {"channel_id": channel_id, "event": event},
             events.event_id(event), lane=BULK)

    return publish
