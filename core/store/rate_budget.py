"""One Capillary rate budget for the whole deployment, kept in Redis.

Celery's own rate_limit is per worker; Capillary counts per API key across all of them. A
sliding log (a sorted set of call times, judged by Redis's own clock) guarantees that no 60 s
window ever holds more than the budget, whichever machines the calls come from.

The window is 61 s, not 60: a call is counted when its slot is taken, but Capillary counts it
when it arrives, a few milliseconds (or, behind a slow connection, a few hundred) later. The
extra second absorbs that skew at the cost of a sixtieth of the budget; with an exact 60 s
window the fault burst test saw calls land in a minute Capillary had already counted full
(docs/RELIABILITY.md).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import redis

from core.errors import ComeBackLater

_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local used = redis.call('ZCARD', KEYS[1])
if used < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], window)
  return {1, 0}
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {0, tonumber(oldest[2]) + window - now}
"""


@dataclass
class BudgetStats:
    used: int
    limit: int


class SharedRateLimiter:
    """Take one call from the shared budget, waiting briefly or asking the caller to come back."""

    def __init__(
        self,
        client: redis.Redis,
        limit_per_minute: int,
        key: str = "linecap:ratelimit:capillary",
        window_ms: int = 61_000,
        max_inline_wait: float = 2.0,
        on_wait=None,
    ) -> None:
        self._client = client
        self._script = client.register_script(_ACQUIRE)
        self.limit = limit_per_minute
        self.key = key
        self.window_ms = window_ms
        self.max_inline_wait = max_inline_wait
        self._on_wait = on_wait

    def try_acquire(self) -> float:
        """Take a slot now and return 0, or return the seconds until one frees up."""
        granted, wait_ms = self._script(
            keys=[self.key], args=[self.limit, self.window_ms, uuid.uuid4().hex]
        )
        return 0.0 if granted else max(float(wait_ms), 1.0) / 1000.0

    def acquire(self) -> None:
        """Wait up to max_inline_wait for a slot; beyond that raise ComeBackLater.

        A worker slot is never held idle for long, and a message never waits in a worker past
        the broker's visibility timeout: the task is re-queued with a countdown instead.
        """
        deadline = time.monotonic() + self.max_inline_wait
        while True:
            wait = self.try_acquire()
            if wait == 0.0:
                return
            if self._on_wait:
                self._on_wait(wait)
            if time.monotonic() + wait > deadline:
                raise ComeBackLater("Capillary rate budget exhausted", wait_seconds=wait)
            time.sleep(wait)

    def stats(self) -> BudgetStats:
        now_ms = int(time.time() * 1000)
        used = self._client.zcount(self.key, now_ms - self.window_ms, "+inf")
        return BudgetStats(used=int(used), limit=self.limit)
