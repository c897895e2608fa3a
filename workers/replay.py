"""Replay dead letters: publish the job again, then drop the entry.

Publishing first means a crash between the two steps leaves the entry in place; replaying it
once more is harmless because the tasks skip work they have already done.
"""

from __future__ import annotations

from celery import Celery

from core.store.dead_letters import DeadLetterStore
from core.store.rate_budget import BULK
from workers.messages import send


def replay_one(store: DeadLetterStore, celery_app: Celery, event_id: str) -> bool:
    """True when the entry existed and was handed back to its task."""
    letter = store.get(event_id)
    if letter is None:
        return False
    # Bulk lane: a replay of many dead letters must not take live events' budget.
    send(celery_app, letter.task,
         {"channel_id": letter.channel_id, letter.payload_kwarg: letter.event},
         letter.event_id, retry=True, lane=BULK)
    store.take(event_id)
    return True


def replay_all(store: DeadLetterStore, celery_app: Celery) -> int:
    """Replay the entries present now; one that fails again at once is not replayed twice."""
    return sum(int(replay_one(store, celery_app, event_id)) for event_id in store.ids())
