"""The dead-letter store: events that could not be applied, kept for an operator in Redis.

One hash per event (by webhookEventId, so a second failure of the same event updates the entry
instead of adding another) and a sorted set ordered by last failure time for listing.

Each entry expires LINECAP_DEAD_LETTER_TTL_SECONDS after its last failure (an operator has that
long to replay it); the index forgets entries older than that whenever it is written or read,
and counts only the live ones.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from typing import Any

import redis

from config.settings import DEFAULT_DEAD_LETTER_TTL_SECONDS

P = "linecap:dlq:"
INDEX = P + "index"


@dataclass
class DeadLetter:
    event_id: str
    channel_id: str
    event: dict[str, Any]
    error_class: str
    error: str
    attempts: int
    first_failure_at: float
    last_failure_at: float
    task: str = "linecap.process_event"
    payload_kwarg: str = "event"  # the task's keyword for `event` when it replays

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class DeadLetterStore:
    def __init__(self, client: redis.Redis,
                 ttl_seconds: int = DEFAULT_DEAD_LETTER_TTL_SECONDS) -> None:
        self.client = client
        self.ttl_seconds = ttl_seconds

    def add(
        self, event_id: str, channel_id: str, event: dict[str, Any], error_class: str,
        error: str, attempts: int, first_failure_at: float | None = None,
        task: str = "linecap.process_event", payload_kwarg: str = "event",
    ) -> DeadLetter:
        now = time.time()
        previous = self.get(event_id)
        letter = DeadLetter(
            event_id=event_id,
            channel_id=channel_id,
            event=event,
            error_class=error_class,
            error=error[:2000],
            attempts=attempts + (previous.attempts if previous else 0),
            first_failure_at=(previous.first_failure_at if previous else first_failure_at or now),
            last_failure_at=now,
            task=task,
            payload_kwarg=payload_kwarg,
        )
        pipe = self.client.pipeline(transaction=True)
        pipe.set(P + event_id, json.dumps(letter.to_json()), ex=self.ttl_seconds)
        pipe.zadd(INDEX, {event_id: now})
        pipe.zremrangebyscore(INDEX, "-inf", now - self.ttl_seconds)
        pipe.execute()
        return letter

    def get(self, event_id: str) -> DeadLetter | None:
        raw = self.client.get(P + event_id)
        return DeadLetter(**json.loads(raw)) if raw else None

    def list(self, limit: int = 100, offset: int = 0) -> list[DeadLetter]:
        if limit < 1 or offset < 0:
            raise ValueError("limit must be at least 1 and offset at least 0")
        self._forget_expired()
        ids = self.client.zrevrange(INDEX, offset, offset + limit - 1)
        letters = [self.get(i) for i in ids]
        return [letter for letter in letters if letter is not None]

    def ids(self) -> list[str]:
        self._forget_expired()
        return list(self.client.zrange(INDEX, 0, -1))

    def count(self) -> int:
        self._forget_expired()
        return int(self.client.zcard(INDEX))

    def _forget_expired(self) -> None:
        self.client.zremrangebyscore(INDEX, "-inf", time.time() - self.ttl_seconds)

    def take(self, event_id: str) -> DeadLetter | None:
        """Remove and return one entry atomically: two operators replaying it get it once."""
        pipe = self.client.pipeline(transaction=True)
        pipe.get(P + event_id)
        pipe.delete(P + event_id)
        pipe.zrem(INDEX, event_id)
        raw, _, _ = pipe.execute()
        return DeadLetter(**json.loads(raw)) if raw else None

    def purge(self, event_id: str | None = None) -> int:
        """Delete one entry, or all of them when no id is given; returns how many."""
        ids = [event_id] if event_id else self.ids()
        removed = 0
        for one in ids:
            removed += int(self.take(one) is not None)
        return removed
