"""A user's history as a person reads it: one line per entry, and the one-line answer to
"why is this customer not opted in?". Shared by `linecap history`, `linecap check` and the
ops API's GET /ops/users/<channel>/<user>.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from core.store import history
from core.store.history import HistoryStore
from core.store.state import StateStore, UserRecord

# Outcomes that say nothing new about the user's state: a copy, or an event that lost.
_PASSIVE = frozenset({"duplicate", "stale", "invalid", "ignored"})
_PENDING = frozenset({"retried", "deferred", "failed", "requeued"})
_EVENT_TYPES = frozenset({"follow", "unfollow"})


def when(ms: int | float | None) -> str:
    """Milliseconds since the epoch as `2024-05-01 10:00:00.123Z`."""
    if not ms:
        return "-"
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def subject(entry: dict[str, Any]) -> str:
    """What an entry is about: `follow 01HX…`, or the run for a drift."""
    if entry.get("kind") == history.DRIFT:
        return f"run {entry.get('run', '?')}"
    return " ".join(str(p) for p in (entry.get("type"), entry.get("event")) if p)


def describe(entry: dict[str, Any]) -> str:
    """One entry in words."""
    kind = entry.get("kind")
    reason = f": {entry['reason']}" if entry.get("reason") else ""
    if kind == history.RECEIVED:
        again = ", a redelivery by LINE" if entry.get("redelivery") else ""
        return (f"received from {entry.get('queue') or 'the queue'} (LINE timestamp "
                f"{when(entry.get('timestamp'))}{again})")
    if kind == history.CALL:
        return f"Capillary {entry.get('call')} -> {entry.get('status')} ({entry.get('ms')} ms)"
    if kind == history.OUTCOME:
        text = f"{entry.get('outcome')} (attempt {entry.get('attempt', 1)}){reason}"
        if entry.get("customer") is not None:
            text += f" [customer {entry['customer']}]"
        if entry.get("latest_event"):
            text += f" [latest: {entry['latest_event']}]"
        if entry.get("again_in_s") is not None:
            text += f"; again in {entry['again_in_s']} s"
        return text
    if kind == history.QUEUED:
        return f"queued by {entry.get('by')}{reason}"
    if kind == history.REPLAYED:
        return f"replayed by {entry.get('by')}{reason}"
    if kind == history.DRIFT:
        return f"drift{reason} [latest: {entry.get('latest_event', '?')}]"
    return str(kind)


@dataclass(frozen=True)
class UserHistory:
    channel_id: str
    user_id: str
    record: UserRecord | None  # the latest applied event (per-user order)
    parked: dict[str, Any] | None
    entries: list[dict[str, Any]]
    ttl_seconds: int
    max_entries: int

    @classmethod
    def read(cls, store: HistoryStore, state: StateStore, channel_id: str,
             user_id: str) -> UserHistory:
        return cls(channel_id, user_id, state.user_record(channel_id, user_id),
                   state.parked_event(channel_id, user_id), store.read(channel_id, user_id),
                   store.ttl_seconds, store.max_entries)

    @property
    def kept(self) -> str:
        return f"{self.ttl_seconds // 86400} days, at most {self.max_entries} entries"

    def state_line(self) -> str:
        if self.record is None:
            return "no applied event on record"
        return (f"{self.record.state} ({self.record.last_event_id}, LINE timestamp "
                f"{when(self.record.last_timestamp)})")

    def explanation(self) -> str:
        """Why the user is (not) opted in, from the latest entry that decided it."""
        finished = {e.get("event") for e in self.entries if e.get("kind") == history.OUTCOME}
        for entry in reversed(self.entries):
            kind, event = entry.get("kind"), entry.get("event")
            if kind == history.OUTCOME and entry.get("type") in _EVENT_TYPES:
                outcome = entry.get("outcome")
                if outcome in _PASSIVE:
                    continue
                return _because(entry, outcome)
            if kind == history.DRIFT:
                return (f"linecap has the user following, but LINE's follower list left them "
                        f"out at {when(entry['at'])} (reconciliation {entry.get('run')})")
            if kind in (history.QUEUED, history.REPLAYED, history.RECEIVED) \
                    and event not in finished:
                return (f"{subject(entry)} {kind} at {when(entry['at'])} and not applied yet "
                        "(waiting in its queue)")
        return self._no_history()

    def _no_history(self) -> str:
        days = self.ttl_seconds // 86400
        if self.record is not None:
            return (f"nothing in the last {days} days of history; linecap's latest applied "
                    f"event for this user: {self.state_line()}")
        if self.parked is not None:
            return "a follow is parked until a mobile number is known"
        return (f"no event from this user reached linecap in the last {days} days: LINE did "
                "not deliver one (webhook off or failing, redelivery off); the reconciliation "
                "(`linecap reconcile`) queues a follow when LINE lists the user as a follower")

    def to_json(self) -> dict[str, Any]:
        record = None if self.record is None else {
            "state": self.record.state, "last_event": self.record.last_event_id,
            "last_timestamp": self.record.last_timestamp, "applied_at": self.record.applied_at}
        return {"channel_id": self.channel_id, "user_id": self.user_id, "state": record,
                "parked": self.parked is not None, "explanation": self.explanation(),
                "retention_seconds": self.ttl_seconds, "max_entries": self.max_entries,
                "entries": [{**e, "text": describe(e)} for e in self.entries]}


def _because(entry: dict[str, Any], outcome: str | None) -> str:
    what, at = subject(entry), when(entry["at"])
    reason = f" ({entry['reason']})" if entry.get("reason") else ""
    if outcome == "applied":
        head = "not opted in because" if entry.get("type") == "unfollow" else "opted in by"
        return f"{head}: {what} applied at {at}{reason}"
    if outcome == "dead_lettered":
        return (f"not applied: {what} dead-lettered at {at}{reason}; `linecap dlq show "
                f"{entry.get('event')}`, then replay it")
    if outcome == "parked":
        return f"not applied: {what} parked at {at}{reason}"
    if outcome in _PENDING:
        return (f"not applied yet: {what} {outcome} at {at} (attempt "
                f"{entry.get('attempt', 1)}){reason}")
    return f"{what} ended as {outcome} at {at}{reason}"
