"""What linecap remembers between events, in Redis: applied events, per-user order and locks,
the LINE user → customer cache, mobile numbers learned for LINE users, and parked follows.

Keys are namespaced `linecap:` so that the broker's own keys sit beside them untouched.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import redis

from core.errors import ComeBackLater
from core.store.lock_renewal import LockRenewer

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_EXTEND = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""

P = "linecap:"


@dataclass(frozen=True)
class UserRecord:
    """The latest event applied for one (channel, user): the order check compares against it."""

    last_timestamp: int
    last_event_id: str
    state: str  # "followed", "unfollowed"

    def is_newer_than(self, timestamp: int, event_id: str) -> bool:
        return (self.last_timestamp, self.last_event_id) >= (timestamp, event_id)


@dataclass(frozen=True)
class UserView:
    """What applying one event needs to know about its user, read in one round trip."""

    outcome: str | None  # how this event already ended, if it has
    record: UserRecord | None
    cached_customer: int | None
    parked_event: dict | None


class UserLock:
    """A short lock on one (channel, user) so two of their events never call Capillary at once.

    Its lease is renewed in the background while held (core.store.lock_renewal), so a holder
    that dies frees it within one lease, and one that works long keeps it.
    """

    def __init__(self, store: StateStore, key: str, token: str, ttl_ms: int) -> None:
        self._store, self.key, self.token, self._ttl_ms = store, key, token, ttl_ms

    def extend(self) -> bool:
        """Push the expiry out again; called between steps of a long task."""
        return bool(self._store._extend(keys=[self.key], args=[self.token, self._ttl_ms]))


class StateStore:
    def __init__(self, client: redis.Redis, dedup_ttl: int, cache_ttl: int,
                 lock_ttl: float) -> None:
        self.client = client
        self.dedup_ttl = dedup_ttl
        self.cache_ttl = cache_ttl
        self.lock_ttl = lock_ttl
        self._release = client.register_script(_RELEASE)
        self._extend = client.register_script(_EXTEND)
        self._renewer = LockRenewer(self._extend_lock, lock_ttl)

    # -- applied events -------------------------------------------------------------------
    def outcome_of(self, event_id: str) -> str | None:
        """How an event already ended ("applied", "stale", …), or None if it has not."""
        return self.client.get(f"{P}event:{event_id}")

    def finish_event(
        self, event_id: str, outcome: str, channel_id: str, user_id: str,
        timestamp: int, new_state: str | None,
    ) -> None:
        """Record the outcome, and (when it changed Capillary) the user's latest event, at once."""
        pipe = self.client.pipeline(transaction=True)
        pipe.set(f"{P}event:{event_id}", outcome, ex=self.dedup_ttl)
        if new_state is not None:
            pipe.hset(
                self._user_key(channel_id, user_id),
                mapping={"ts": timestamp, "event": event_id, "state": new_state},
            )
        pipe.execute()

    def mark_event(self, event_id: str, outcome: str) -> None:
        self.client.set(f"{P}event:{event_id}", outcome, ex=self.dedup_ttl)

    # -- per-user order -------------------------------------------------------------------
    def user_record(self, channel_id: str, user_id: str) -> UserRecord | None:
        return _user_record(self.client.hgetall(self._user_key(channel_id, user_id)))

    def user_view(self, event_id: str, channel_id: str, user_id: str) -> UserView:
        """The event's outcome, the user's order record, cached customer and parked follow,
        in one pipelined round trip (the event path's reads; four round trips one by one)."""
        pipe = self.client.pipeline(transaction=False)
        pipe.get(f"{P}event:{event_id}")
        pipe.hgetall(self._user_key(channel_id, user_id))
        pipe.get(f"{P}customer:{channel_id}:{user_id}")
        pipe.hget(f"{P}parked", f"{channel_id}:{user_id}")
        outcome, record, customer, parked = pipe.execute()
        return UserView(outcome, _user_record(record), int(customer) if customer else None,
                        json.loads(parked) if parked else None)

    @contextmanager
    def user_lock(self, channel_id: str, user_id: str) -> Iterator[UserLock]:
        """Hold the user's lock, or raise ComeBackLater with the time left on the holder's."""
        key = f"{P}lock:{channel_id}:{user_id}"
        token = uuid.uuid4().hex
        ttl_ms = int(self.lock_ttl * 1000)
        if not self.client.set(key, token, nx=True, px=ttl_ms):
            remaining = self.client.pttl(key)
            wait = max(remaining, 200) / 1000.0 if remaining and remaining > 0 else 0.2
            raise ComeBackLater("another event for this user is being applied", min(wait, 5.0))
        self._renewer.hold(key, token)
        try:
            yield UserLock(self, key, token, ttl_ms)
        finally:
            self._renewer.release(key)
            self._release(keys=[key], args=[token])

    def _extend_lock(self, key: str, token: str) -> bool:
        return bool(self._extend(keys=[key], args=[token, int(self.lock_ttl * 1000)]))

    # -- LINE user -> Capillary customer ---------------------------------------------------
    def cached_customer(self, channel_id: str, user_id: str) -> int | None:
        value = self.client.get(f"{P}customer:{channel_id}:{user_id}")
        return int(value) if value else None

    def cache_customer(self, channel_id: str, user_id: str, customer_id: int) -> None:
        self.client.set(f"{P}customer:{channel_id}:{user_id}", customer_id, ex=self.cache_ttl)

    def forget_customer(self, channel_id: str, user_id: str) -> None:
        self.client.delete(f"{P}customer:{channel_id}:{user_id}")

    # -- identities learned for LINE users (registration CLI, bulk import, account link) ----
    def identity_hint(self, user_id: str) -> dict[str, str]:
        return self.client.hgetall(f"{P}identity:{user_id}")

    def remember_identity(self, user_id: str, mobile: str, name: str | None = None) -> None:
        mapping = {"mobile": mobile}
        if name:
            mapping["name"] = name
        self.client.hset(f"{P}identity:{user_id}", mapping=mapping)

    # -- follows parked until a mobile number is known --------------------------------------
    def park(self, channel_id: str, user_id: str, event: dict) -> None:
        self.client.hset(f"{P}parked", f"{channel_id}:{user_id}", json.dumps(event))

    def unpark(self, channel_id: str, user_id: str) -> dict | None:
        field = f"{channel_id}:{user_id}"
        pipe = self.client.pipeline(transaction=True)
        pipe.hget(f"{P}parked", field)
        pipe.hdel(f"{P}parked", field)
        raw, _ = pipe.execute()
        return json.loads(raw) if raw else None

    def parked_event(self, channel_id: str, user_id: str) -> dict | None:
        raw = self.client.hget(f"{P}parked", f"{channel_id}:{user_id}")
        return json.loads(raw) if raw else None

    def parked(self) -> dict[str, dict]:
        return {k: json.loads(v) for k, v in self.client.hgetall(f"{P}parked").items()}

    @staticmethod
    def _user_key(channel_id: str, user_id: str) -> str:
        return f"{P}user:{channel_id}:{user_id}"


def _user_record(data: dict[str, str]) -> UserRecord | None:
    if not data:
        return None
    return UserRecord(int(data["ts"]), data.get("event", ""), data.get("state", ""))
