"""How each bulk-import row ended, by its task id, in Redis: the CLI's skip list and progress
source, written by the import task."""

from __future__ import annotations

from collections.abc import Iterable

import redis

MARKER_TTL_SECONDS = 30 * 24 * 3600
_MARKER = "linecap:import:"


class ImportMarkers:
    def __init__(self, client: redis.Redis, ttl_seconds: int = MARKER_TTL_SECONDS) -> None:
        self.client = client
        self.ttl_seconds = ttl_seconds

    def outcome(self, task_id: str) -> str | None:
        return self.client.get(_MARKER + task_id)

    def outcomes(self, task_ids: Iterable[str], chunk: int = 500) -> dict[str, str | None]:
        ids = list(task_ids)
        found: dict[str, str | None] = {}
        for start in range(0, len(ids), chunk):
            part = ids[start:start + chunk]
            found.update(zip(part, self.client.mget([_MARKER + i for i in part]), strict=True))
        return found

    def record(self, task_id: str, outcome: str) -> None:
        self.client.set(_MARKER + task_id, outcome, ex=self.ttl_seconds)

    def clear(self, task_id: str) -> None:
        self.client.delete(_MARKER + task_id)
