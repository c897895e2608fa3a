"""One bulk-import row: what it says, its task id, and registering it within the shared budget.

The task id comes from (channel, mobile, LINE user id), keyed (core.keyed_ids) so that it does
not give the mobile away in logs and Flower; importing a file twice enqueues the same ids; the
outcome marker in Redis lets the CLI skip rows already done and wait for the rest, and the
registration itself is idempotent for the rows that run twice anyway. Subscriptions are
left to follow events and `backfill-followers`: an import does not know who follows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from config import LineChannel
from core.errors import InvalidInputError
from core.keyed_ids import keyed_id
from core.store.import_markers import ImportMarkers
from tasks.customers import Identity, register_known_mobile
from workers.outcomes import Outcome
from workers.runtime import Runtime, get_runtime

DONE_OUTCOMES = frozenset({Outcome.REGISTERED, Outcome.ALREADY_THERE})


@dataclass(frozen=True)
class ImportRow:
    """A validated CSV row; `to_payload()` is the message body and the dead letter's event."""

    mobile: str
    line_user_id: str
    name: str | None = None

    def to_payload(self) -> dict[str, Any]:
        return {"mobile": self.mobile, "line_user_id": self.line_user_id, "name": self.name}

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> ImportRow:
        mobile, user_id = payload.get("mobile"), payload.get("line_user_id")
        if not (isinstance(mobile, str) and mobile and isinstance(user_id, str) and user_id):
            raise InvalidInputError("import row needs mobile and line_user_id")
        name = payload.get("name")
        return cls(mobile, user_id, name if isinstance(name, str) and name else None)


def import_task_id(channel: LineChannel, mobile: str, line_user_id: str) -> str:
    """The same row of the same channel always gets the same id (and Flower shows it)."""
    return keyed_id("import", channel, mobile, line_user_id)


def row_task_id(channel_id: str, payload: dict[str, Any]) -> str | None:
    """The row's task id, or None when the payload is unreadable (or the channel is gone).
    The key is the channel's, so the worker's settings are asked."""
    channel = get_runtime().settings.channel(channel_id)
    try:
        row = ImportRow.from_payload(payload)
    except InvalidInputError:
        return None
    return import_task_id(channel, row.mobile, row.line_user_id) if channel else None


def import_row(runtime: Runtime, channel_id: str, payload: dict[str, Any]) -> Outcome:
    """Register the row's person (an earlier run's outcome stands), under their user lock."""
    row = ImportRow.from_payload(payload)
    channel = runtime.channel(channel_id)
    earlier = ImportMarkers(runtime.redis).outcome(
        import_task_id(channel, row.mobile, row.line_user_id))
    if earlier in DONE_OUTCOMES:
        return Outcome(earlier)
    with runtime.state.user_lock(channel_id, row.line_user_id):
        return register_known_mobile(runtime, channel, row.line_user_id,
                                     Identity("mobile", row.mobile, row.name))
