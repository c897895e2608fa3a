"""Capillary's rate budgets for the whole deployment, kept in Redis: one per API group when
configured, else one shared, and a share of each kept for live events.

Celery's own rate_limit is per worker; Capillary counts per API key (and per API) across all of
them. A sliding log (a sorted set of call times, judged by Redis's own clock) guarantees that no
window ever holds more than the budget, whichever machines the calls come from.

Lanes: live webhook events may take the whole budget; bulk work (back-fills, imports, replays)
only what the live reserve leaves, so a live follow never queues behind a back-fill's calls.

Reservations: a batch takes the calls it will need in one step before its first call, and gives
back what it did not use. A batch that met an empty budget half-way would come back later and
make its lookups again; at 100 calls a minute a few batches in flight are a whole window.

The window is 61 s, not 60: a call is counted when its slot is taken, but Capillary counts it
when it arrives, a few milliseconds (or, behind a slow connection, a few hundred) later. The
extra second absorbs that skew at the cost of a sixtieth of the budget; with an exact 60 s
window the fault burst test saw calls land in a minute Capillary had already counted full
(docs/RELIABILITY.md).
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

import redis

from core.errors import ComeBackLater

LIVE, BULK = "live", "bulk"
SHARED = "shared"
# The API groups Capillary budgets separately (reference § Rate limits).
API_GROUPS = ("lookup", "add", "subscriptions", "identifiers", "bulk")
KEY_PREFIX = "linecap:ratelimit:"
# The shared budget keeps the key it always had, so a rolling deploy shares one window.
SHARED_KEY = KEY_PREFIX + "capillary"

_lane: ContextVar[str] = ContextVar("linecap_lane", default=LIVE)
# Budget key -> slots this context reserved and has not used yet.
_reserved: ContextVar[dict[str, list[str]] | None] = ContextVar("linecap_reserved", default=None)

# KEYS[1] the log; ARGV: cap (what this caller may fill), window ms, member, limit (for the
# expiry). Grants when fewer than `cap` calls are in the window; otherwise answers how long
# until enough of them leave it.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local cap = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local used = redis.call('ZCARD', KEYS[1])
if used < cap then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], window)
  return {1, 0}
end
local freeing = redis.call('ZRANGE', KEYS[1], used - cap, used - cap, 'WITHSCORES')
return {0, tonumber(freeing[2]) + window - now}
"""

# KEYS[1] the log; ARGV: cap, window ms, then the members to add. All of them or none; when
# none, how long until enough calls leave the window for all of them.
_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local cap = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local wanted = #ARGV - 2
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local used = redis.call('ZCARD', KEYS[1])
if used + wanted <= cap then
  for i = 3, #ARGV do
    redis.call('ZADD', KEYS[1], now, ARGV[i])
  end
  redis.call('PEXPIRE', KEYS[1], window)
  return {1, 0}
end
local freeing = redis.call('ZRANGE', KEYS[1], used + wanted - cap - 1, used + wanted - cap - 1,
                           'WITHSCORES')
return {0, tonumber(freeing[2]) + window - now}
"""


@contextmanager
def lane(name: str) -> Iterator[None]:
    """Calls made inside the block count as `name`'s (LIVE or BULK)."""
    token = _lane.set(name)
    try:
        yield
    finally:
        _lane.reset(token)


def current_lane() -> str:
    return _lane.get()


@dataclass(frozen=True)
class BudgetStats:
    name: str
    used: int
    limit: int


class SharedRateLimiter:
    """Take one call from the budget of its API group, waiting briefly or asking the caller
    to come back."""

    def __init__(
        self,
        client: redis.Redis,
        limit_per_minute: int,
        key: str = SHARED_KEY,
        window_ms: int = 61_000,
        max_inline_wait: float = 2.0,
        on_wait: Callable[[float], None] | None = None,
        group_limits: Mapping[str, int] | None = None,
        live_reserve: float = 0.0,
    ) -> None:
        self._client = client
        self._script = client.register_script(_ACQUIRE)
        self._reserve = client.register_script(_RESERVE)
        self.limit = limit_per_minute
        self.key = key
        self.window_ms = window_ms
        self.max_inline_wait = max_inline_wait
        self._on_wait = on_wait
        self.group_limits = {g: n for g, n in (group_limits or {}).items() if n}
        self.live_reserve = live_reserve

    def budget(self, group: str | None) -> tuple[str, str, int]:
        """(name, Redis key, calls per minute) of the budget a call of that group takes."""
        if group in self.group_limits:
            return group, KEY_PREFIX + group, self.group_limits[group]
        return SHARED, self.key, self.limit

    def budgets(self) -> list[tuple[str, str, int]]:
        """Every budget in use: the shared one and each group's own."""
        return [self.budget(None), *(self.budget(g) for g in sorted(self.group_limits))]

    def cap(self, limit: int, lane_name: str) -> int:
        """What a lane may fill of a budget: all of it when live, the rest after the live
        reserve when bulk (at least one call, so bulk work never stops altogether)."""
        if lane_name == LIVE:
            return limit
        return max(1, limit - math.ceil(limit * self.live_reserve))

    def try_acquire(self, group: str | None = None, lane_name: str | None = None) -> float:
        """Take a slot now and return 0, or return the seconds until one frees up."""
        _, key, limit = self.budget(group)
        cap = self.cap(limit, lane_name or current_lane())
        granted, wait_ms = self._script(keys=[key],
                                        args=[cap, self.window_ms, uuid.uuid4().hex])
        return 0.0 if granted else max(float(wait_ms), 1.0) / 1000.0

    def acquire(self, group: str | None = None) -> None:
        """Use a reserved slot, or wait up to max_inline_wait for one; beyond that raise
        ComeBackLater.

        A worker slot is never held idle for long: the job waits in Redis instead
        (core.store.delayed_jobs) and runs again when a slot frees.
        """
        reserved = (_reserved.get() or {}).get(self.budget(group)[1])
        if reserved:
            reserved.pop()
            return
        deadline = time.monotonic() + self.max_inline_wait
        while True:
            wait = self.try_acquire(group)
            if wait == 0.0:
                return
            if self._on_wait:
                self._on_wait(wait)
            if time.monotonic() + wait > deadline:
                raise ComeBackLater(f"Capillary rate budget {self.budget(group)[0]} exhausted"
                                    f" ({current_lane()} lane)", wait_seconds=wait)
            time.sleep(wait)

    @contextmanager
    def reserve(self, needs: Mapping[str, int]) -> Iterator[None]:
        """Take `needs` (API group -> calls) up front, in the current lane, for the calls made
        inside the block; what they did not use goes back to the budget at the end.

        Raises ComeBackLater, having taken nothing, when a budget lacks the room. A need larger
        than a lane's whole cap is left to call-by-call waits (it could never be met at once).
        """
        per_budget: dict[str, int] = {}
        caps: dict[str, int] = {}
        for group, count in needs.items():
            _, key, limit = self.budget(group)
            per_budget[key] = per_budget.get(key, 0) + max(0, count)
            caps[key] = self.cap(limit, current_lane())
        taken: dict[str, list[str]] = {}
        try:
            for key, count in per_budget.items():
                if not 0 < count <= caps[key]:
                    continue
                members = [uuid.uuid4().hex for _ in range(count)]
                granted, wait_ms = self._reserve(keys=[key],
                                                 args=[caps[key], self.window_ms, *members])
                if not granted:
                    wait = max(float(wait_ms), 1.0) / 1000.0
                    if self._on_wait:
                        self._on_wait(wait)
                    raise ComeBackLater(f"Capillary rate budget {self._name_of(key)} has no room"
                                        f" for {count} calls ({current_lane()} lane)",
                                        wait_seconds=wait)
                taken[key] = members
            token = _reserved.set(taken)
        except BaseException:
            self._give_back(taken)
            raise
        try:
            yield
        finally:
            _reserved.reset(token)
            self._give_back(taken)

    def _give_back(self, taken: Mapping[str, list[str]]) -> None:
        pipe = self._client.pipeline(transaction=False)
        for key, members in taken.items():
            if members:
                pipe.zrem(key, *members)
        pipe.execute()

    def _name_of(self, key: str) -> str:
        return next((name for name, k, _ in self.budgets() if k == key), key)

    def stats(self, group: str | None = None) -> BudgetStats:
        name, key, limit = self.budget(group)
        now_ms = int(time.time() * 1000)
        used = self._client.zcount(key, now_ms - self.window_ms, "+inf")
        return BudgetStats(name, int(used), limit)
