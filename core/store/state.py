"""What linecap remembers between events, in Redis: applied events, per-user order and locks,
the LINE user → customer cache, mobile numbers learned for LINE users, and parked follows.

Keys are namespaced `linecap:` so that the broker's own keys sit beside them untouched. Every
key expires (`Retention`, renewed on each write): Redis holds what recent users need, not
everyone who ever sent an event. The user ids in keys are LINE ids, checked before they get
here, so a key's size is bounded too.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import redis

from config.settings import (
    DEFAULT_IDENTITY_TTL_SECONDS,
    DEFAULT_PARKED_TTL_SECONDS,
    DEFAULT_USER_RECORD_TTL_SECONDS,
    Settings,
)
from core.errors import ComeBackLater
from core.store.lease import RELEASE_IF_HELD
from core.store.lock_renewal import LockRenewer

_EXTEND = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
# Only on a record that exists: a new hash would have no expiry and no "ts".
_MARK_SEEN = """
if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('HSET', KEYS[1], 'seen', ARGV[1]) end
return -1
"""

P = "linecap:"
PARKED = P + "parked:"


@dataclass(frozen=True)
class Retention:
    """Seconds each per-user record lives after its last write (LINECAP_*_TTL_SECONDS)."""

    user_record: int = DEFAULT_USER_RECORD_TTL_SECONDS
    identity: int = DEFAULT_IDENTITY_TTL_SECONDS
    parked: int = DEFAULT_PARKED_TTL_SECONDS

    @classmethod
    def from_settings(cls, settings: Settings) -> Retention:
        return cls(settings.user_record_ttl_seconds, settings.identity_ttl_seconds,
                   settings.parked_ttl_seconds)


@dataclass(frozen=True)
class UserRecord:
    """The latest event applied for one (channel, user): the order check compares against it."""

    last_timestamp: int
    last_event_id: str
    state: str  # "followed", "unfollowed"
    # When it was written (0: by a version that did not say); not part of what it says.
    applied_at: float = field(default=0.0, compare=False)

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
    def __init__(self, client: redis.Redis, dedup_ttl: int, cache_ttl: int, lock_ttl: float,
                 retention: Retention | None = None) -> None:
        self.client = client
        self.dedup_ttl = dedup_ttl
        self.cache_ttl = cache_ttl
        self.lock_ttl = lock_ttl
        self.retention = retention or Retention()
        self._release = client.register_script(RELEASE_IF_HELD)
        self._extend = client.register_script(_EXTEND)
        self._mark_seen = client.register_script(_MARK_SEEN)
        self._renewer = LockRenewer(self._extend_lock, lock_ttl)

    @classmethod
    def from_settings(cls, client: redis.Redis, settings: Settings) -> StateStore:
        return cls(client, settings.event_dedup_ttl_seconds, settings.customer_cache_ttl_seconds,
                   settings.user_lock_seconds, Retention.from_settings(settings))

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
            key = self._user_key(channel_id, user_id)
            pipe.hset(key, mapping={"ts": timestamp, "event": event_id, "state": new_state,
                                    "at": round(time.time(), 3)})
            pipe.expire(key, self.retention.user_record)
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
        pipe.get(self._parked_key(channel_id, user_id))
        outcome, record, customer, parked = pipe.execute()
        return UserView(outcome, _user_record(record), int(customer) if customer else None,
                        json.loads(parked) if parked else None)

    def user_records(self, channel_id: str, user_ids: list[str]
                     ) -> list[tuple[UserRecord | None, bool]]:
        """Each user's order record and whether a follow of theirs is parked, in one round
        trip (the reconciliation reads a page of LINE's followers at once)."""
        pipe = self.client.pipeline(transaction=False)
        for user_id in user_ids:
            pipe.hgetall(self._user_key(channel_id, user_id))
            pipe.exists(self._parked_key(channel_id, user_id))
        answers = pipe.execute()
        return [(_user_record(answers[i]), bool(answers[i + 1]))
                for i in range(0, len(answers), 2)]

    def mark_seen(self, channel_id: str, user_ids: list[str], run_id: str) -> None:
        """Note on each user's record that reconciliation `run_id` found them in LINE's list."""
        pipe = self.client.pipeline(transaction=False)
        for user_id in user_ids:
            self._mark_seen(keys=[self._user_key(channel_id, user_id)], args=[run_id],
                            client=pipe)
        pipe.execute()

    def scan_user_records(self, channel_id: str, cursor: int = 0, count: int = 1000
                          ) -> tuple[int, list[tuple[str, UserRecord, str]]]:
        """One step of a SCAN over the channel's order records: the next cursor (0 at the
        end) and (user, record, the run that last saw the user in LINE's list)."""
        prefix = self._user_key(channel_id, "")
        cursor, keys = self.client.scan(cursor, match=prefix + "U*", count=count)
        pipe = self.client.pipeline(transaction=False)
        for key in keys:
            pipe.hgetall(key)
        found = []
        for key, data in zip(keys, pipe.execute() if keys else [], strict=True):
            record = _user_record(data)
            if record is not None:
                found.append((key.removeprefix(prefix), record, data.get("seen", "")))
        return int(cursor), found

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
    def batch_progress(self, channel_id: str,
                       items: list[tuple[str, str]]) -> list[tuple[bool, bool]]:
        """Per (event id, user id): whether the event already ended, and whether the user's
        customer is cached, in one round trip (what a batch still has to do)."""
        pipe = self.client.pipeline(transaction=False)
        for event_id, user_id in items:
            pipe.exists(f"{P}event:{event_id}")
            pipe.exists(f"{P}customer:{channel_id}:{user_id}")
        answers = pipe.execute()
        return [(bool(done), bool(cached))
                for done, cached in zip(answers[::2], answers[1::2], strict=True)]

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
        key = f"{P}identity:{user_id}"
        pipe = self.client.pipeline(transaction=True)
        pipe.delete(key)  # a name from an earlier identity must not outlive it
        pipe.hset(key, mapping=mapping)
        pipe.expire(key, self.retention.identity)
        pipe.execute()

    # -- what Capillary told us about itself --------------------------------------------------
    def line_lookup_refused(self) -> bool:
        """True when Capillary refused a lookup by the LINE identifier name (8013) lately."""
        return bool(self.client.exists(f"{P}capillary:line-lookup-refused"))

    def remember_line_lookup_refused(self, ttl_seconds: int = 24 * 3600) -> None:
        """Kept a day, so a change on Capillary's side is noticed without a restart."""
        self.client.set(f"{P}capillary:line-lookup-refused", "8013", ex=ttl_seconds)

    def batch_limit(self) -> int | None:
        """The largest batch Capillary took since it refused a bigger one (1060), if it did."""
        value = self.client.get(f"{P}capillary:batch-limit")
        return int(value) if value else None

    def remember_batch_limit(self, size: int, ttl_seconds: int = 24 * 3600) -> None:
        self.client.set(f"{P}capillary:batch-limit", size, ex=ttl_seconds)

    # -- events parked until a mobile number is known (one key each, so each expires) --------
    def park(self, channel_id: str, user_id: str, event: dict) -> None:
        self.client.set(self._parked_key(channel_id, user_id), json.dumps(event),
                        ex=self.retention.parked)

    def unpark(self, channel_id: str, user_id: str) -> dict | None:
        key = self._parked_key(channel_id, user_id)
        pipe = self.client.pipeline(transaction=True)
        pipe.get(key)
        pipe.delete(key)
        raw, _ = pipe.execute()
        return json.loads(raw) if raw else None

    def parked_event(self, channel_id: str, user_id: str) -> dict | None:
        raw = self.client.get(self._parked_key(channel_id, user_id))
        return json.loads(raw) if raw else None

    def move_legacy_parked(self) -> int:
        """Follows parked by an earlier version, all in one hash that could not expire, moved
        to a key each (with the retention); how many. Idempotent, and one EXISTS when done."""
        legacy = f"{P}parked"
        if not self.client.exists(legacy):
            return 0
        entries = self.client.hgetall(legacy)
        pipe = self.client.pipeline(transaction=True)
        for name, raw in entries.items():
            pipe.set(PARKED + name, raw, ex=self.retention.parked, nx=True)
        pipe.delete(legacy)
        pipe.execute()
        return len(entries)

    def parked(self) -> dict[str, dict]:
        """Every parked follow, by "<channel>:<user>"."""
        found = {}
        for key in self.client.scan_iter(match=PARKED + "*", count=500):
            raw = self.client.get(key)
            if raw:
                found[key.removeprefix(PARKED)] = json.loads(raw)
        return found

    @staticmethod
    def _user_key(channel_id: str, user_id: str) -> str:
        return f"{P}user:{channel_id}:{user_id}"

    @staticmethod
    def _parked_key(channel_id: str, user_id: str) -> str:
        return f"{PARKED}{channel_id}:{user_id}"


def _user_record(data: dict[str, str]) -> UserRecord | None:
    if not data or "ts" not in data:
        return None
    return UserRecord(int(data["ts"]), data.get("event", ""), data.get("state", ""),
                      float(data.get("at") or 0))
