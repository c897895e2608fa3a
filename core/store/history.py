"""Each LINE user's history per channel, in Redis: what arrived, how each run of it ended, the
Capillary calls it made, and what operators and the reconciliation did about the user.

It answers "why is this customer not opted in?" in one place (`linecap history`, the ops API,
`linecap check`). Recording must stay cheap and must never fail the work it describes: one
script call per write (append, cap, prune by age, expire), and a failure to record is logged
and swallowed. What is kept is bounded three ways: at most `max_entries` per (channel, user),
nothing older than `ttl_seconds`, and the whole list expires `ttl_seconds` after its last
write. Mobile numbers in any text are masked before they are stored.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable
from typing import Any

import redis

from config.settings import DEFAULT_HISTORY_MAX_ENTRIES, DEFAULT_HISTORY_TTL_SECONDS, Settings
from core.logs import mask_mobile
from core.validation import is_line_user_id

log = logging.getLogger("linecap.history")

KEY_PREFIX = "linecap:history:"

# The kinds of entry, in the order a user's event usually produces them.
QUEUED = "queued"  # a synthetic event published for the user (reconciliation, back-fill)
REPLAYED = "replayed"  # an operator sent a dead letter back to its task
RECEIVED = "received"  # a worker took the event's message for the first time
CALL = "call"  # one Capillary HTTP call made for it
OUTCOME = "outcome"  # how one run ended: applied, duplicate, stale, parked, retried, …
DRIFT = "drift"  # the reconciliation found linecap and LINE's follower list disagree

# Values linecap itself writes under these keys (ids, names, path templates), never a mobile;
# every other text (a reason carries an error's words) is masked.
_STRUCTURED = frozenset({"kind", "type", "event", "latest_event", "call", "status", "queue",
                         "outcome", "run", "by"})

# KEYS[1] the list; ARGV: cutoff (ms), cap, ttl (s), entries… Entries start `{"at":<ms>`.
_APPEND = """
for i = 4, #ARGV do redis.call('RPUSH', KEYS[1], ARGV[i]) end
redis.call('LTRIM', KEYS[1], -tonumber(ARGV[2]), -1)
local cutoff = tonumber(ARGV[1])
for _ = 1, tonumber(ARGV[2]) do
  local head = redis.call('LINDEX', KEYS[1], 0)
  if not head then break end
  local at = tonumber(string.match(head, '^{"at":(%d+)'))
  if at ~= nil and at >= cutoff then break end
  redis.call('LPOP', KEYS[1])
end
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
return redis.call('LLEN', KEYS[1])
"""


def now_ms() -> int:
    return int(time.time() * 1000)


def entry(kind: str, at_ms: int | None = None, **fields: Any) -> dict[str, Any]:
    """One history entry: when (ms), what kind, and its fields (None values left out)."""
    made: dict[str, Any] = {"at": now_ms() if at_ms is None else int(at_ms), "kind": kind}
    made.update({key: value for key, value in fields.items() if value is not None})
    return made


def history_key(channel_id: str, user_id: str) -> str:
    return f"{KEY_PREFIX}{channel_id}:{user_id}"


class HistoryStore:
    def __init__(self, client: redis.Redis, ttl_seconds: int = DEFAULT_HISTORY_TTL_SECONDS,
                 max_entries: int = DEFAULT_HISTORY_MAX_ENTRIES) -> None:
        self.client = client
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self._append = client.register_script(_APPEND)

    @classmethod
    def from_settings(cls, client: redis.Redis, settings: Settings) -> HistoryStore:
        return cls(client, settings.history_ttl_seconds, settings.history_max_entries)

    def record(self, channel_id: str, user_id: str | None, entries: list[dict[str, Any]]
               ) -> bool:
        """Append to one user's history; False (and a log line) when it could not be."""
        return self.record_many([(channel_id, user_id, entries)])

    def record_many(self, batch: Iterable[tuple[str, str | None, list[dict[str, Any]]]]
                    ) -> bool:
        """Append to several users' histories in one round trip. Never raises: a history
        that cannot be written must not fail the event it describes."""
        try:
            writes = [(history_key(channel, user), [_encoded(e) for e in entries])
                      for channel, user, entries in batch
                      if entries and is_line_user_id(user)]
            if not writes:
                return True
            cutoff = now_ms() - self.ttl_seconds * 1000
            if len(writes) == 1:  # one EVALSHA; a pipeline would first ask SCRIPT EXISTS
                key, encoded = writes[0]
                self._append(keys=[key], args=[cutoff, self.max_entries, self.ttl_seconds,
                                               *encoded])
                return True
            pipe = self.client.pipeline(transaction=False)
            for key, encoded in writes:
                self._append(keys=[key], args=[cutoff, self.max_entries, self.ttl_seconds,
                                               *encoded], client=pipe)
            pipe.execute()
            return True
        except Exception as exc:  # Redis down, a value that is not JSON: the work goes on
            log.warning("history not recorded: %s", type(exc).__name__)
            return False

    def read(self, channel_id: str, user_id: str) -> list[dict[str, Any]]:
        """The user's entries within the retention, oldest first (writers on different
        processes may append a little out of order: sorted by time, stably)."""
        cutoff = now_ms() - self.ttl_seconds * 1000
        raw = self.client.lrange(history_key(channel_id, user_id), 0, -1)
        entries = []
        for text in raw:
            try:
                value = json.loads(text)
            except ValueError:
                continue
            if isinstance(value, dict) and isinstance(value.get("at"), int) \
                    and value["at"] >= cutoff:
                entries.append(value)
        return sorted(entries, key=lambda e: e["at"])


def _encoded(value: dict[str, Any]) -> str:
    """Compact JSON starting `{"at":<ms>` (the append script reads it), mobiles masked."""
    masked = {"at": int(value["at"])}
    masked.update({key: _masked(key, v) for key, v in value.items() if key != "at"})
    return json.dumps(masked, separators=(",", ":"), ensure_ascii=False, default=str)


def _masked(key: str, value: Any) -> Any:
    if isinstance(value, str) and key not in _STRUCTURED:
        return mask_mobile(value)
    return value
