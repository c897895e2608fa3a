"""Replay dead letters: publish the job again, then drop the entry.

Publishing first means a crash between the two steps leaves the entry in place; replaying it
once more is harmless because the tasks skip work they have already done. Each replay goes
into the user's history with who asked for it.
"""

from __future__ import annotations

from typing import Any

from celery import Celery

from core.line import events
from core.store import history
from core.store.dead_letters import DeadLetter, DeadLetterStore
from core.store.history import HistoryStore
from core.store.rate_budget import BULK
from workers.messages import send


def replay_one(store: DeadLetterStore, celery_app: Celery, event_id: str,
               journal: HistoryStore | None = None, by: str = "operator") -> bool:
    """True when the entry existed and was handed back to its task."""
    letter = store.get(event_id)
    if letter is None:
        return False
    # Stamped before the message exists, so it sorts before anything the task records.
    replayed = history.entry(history.REPLAYED, event=letter.event_id, by=by,
                             reason=f"dead letter ({letter.error_class}, "
                                    f"{letter.attempts} attempts)")
    # Bulk lane: a replay of many dead letters must not take live events' budget.
    send(celery_app, letter.task,
         {"channel_id": letter.channel_id, letter.payload_kwarg: letter.event},
         letter.event_id, retry=True, lane=BULK)
    store.take(event_id)
    if journal is not None:
        journal.record(letter.channel_id, letter_user(letter), [replayed])
    return True


def replay_all(store: DeadLetterStore, celery_app: Celery,
               journal: HistoryStore | None = None, by: str = "operator") -> int:
    """Replay the entries present now; one that fails again at once is not replayed twice."""
    return sum(int(replay_one(store, celery_app, event_id, journal, by))
               for event_id in store.ids())


def letter_user(letter: DeadLetter) -> str | None:
    """The LINE user a dead letter is about: an event's or link's source, an import row's."""
    payload: Any = letter.event
    if not isinstance(payload, dict):
        return None
    user = events.user_id(payload) or payload.get("line_user_id")
    return user if isinstance(user, str) else None
