"""Replay dead letters: publish the event again, then drop the entry.

Publishing first means a crash between the two steps leaves the entry in place; replaying it
once more is harmless because the worker drops events it has already applied.
"""

from __future__ import annotations

from core.store.dead_letters import DeadLetterStore
from workers.queues import EVENTS_QUEUE, IMPORTS_QUEUE, LINKING_QUEUE

_QUEUE_BY_PREFIX = (("linecap.import_", IMPORTS_QUEUE), ("linecap.link_", LINKING_QUEUE))


def queue_for(task_name: str) -> str:
    return next((q for prefix, q in _QUEUE_BY_PREFIX if task_name.startswith(prefix)),
                EVENTS_QUEUE)


def replay_one(store: DeadLetterStore, celery_app, event_id: str) -> bool:
    """True when the entry existed and was handed back to its task."""
    letter = store.get(event_id)
    if letter is None:
        return False
    celery_app.send_task(
        letter.task,
        kwargs={"channel_id": letter.channel_id, "event": letter.event},
        task_id=letter.event_id,
        queue=queue_for(letter.task),
    )
    store.take(event_id)
    return True


def replay_all(store: DeadLetterStore, celery_app) -> int:
    """Replay the entries present now; one that fails again at once is not replayed twice."""
    return sum(int(replay_one(store, celery_app, event_id)) for event_id in store.ids())
