"""Bulk import: register one person from a CSV row, INSTORE then LINE, within the shared budget.

The task id comes from (channel, mobile, LINE user id), so importing a file twice enqueues the
same ids; the outcome marker in Redis lets the CLI skip rows already done and wait for the rest,
and the registration itself is idempotent for the rows that run twice anyway. Subscriptions are
left to follow events and `backfill-followers`: an import does not know who follows.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import redis
from celery import Task, shared_task

from config import LineChannel
from core.errors import ConfigurationError, IdentityConflictError, InvalidInputError
from core.logs import log_context
from tasks.customers import Identity, lookup_line_customer, register_customer
from tasks.fate import DEAD_LETTERED, Work, dead_letter, run_with_policy
from tasks.retry_policy import Attempts
from workers.runtime import Runtime, get_runtime

IMPORT_TASK = "linecap.import_user"
REGISTERED, ALREADY_THERE, FAILED = "registered", "already_there", "failed"
DONE_OUTCOMES = frozenset({REGISTERED, ALREADY_THERE})
MARKER_TTL_SECONDS = 30 * 24 * 3600
_TASK_ID_NAMESPACE = uuid.UUID("5b0c7e3e-8d0f-4f3a-9a57-6c1f1f1c0a11")
_MARKER = "linecap:import:"


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


def import_task_id(channel_id: str, mobile: str, line_user_id: str) -> str:
    """The same row of the same channel always gets the same id (and Flower shows it)."""
    key = f"{channel_id}|{mobile}|{line_user_id}"
    return f"import-{uuid.uuid5(_TASK_ID_NAMESPACE, key)}"


class ImportMarkers:
    """The outcome of each import task id, in Redis: the CLI's skip list and progress source."""

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


@shared_task(bind=True, name=IMPORT_TASK, acks_late=True, max_retries=None)
def import_user(self: Task, channel_id: str, event: dict[str, Any],
                attempts: dict | None = None) -> str:
    """`event` is the row's payload; the name matches dead letters so `dlq replay` works."""
    with log_context(channel=channel_id, task_id=self.request.id,
                     user_id=event.get("line_user_id")):
        return _import(self, channel_id, event, Attempts.from_kwargs(attempts))


def _import(task: Task, channel_id: str, payload: dict[str, Any], tries: Attempts) -> str:
    rt = get_runtime()
    markers = ImportMarkers(rt.redis)
    try:
        row = ImportRow.from_payload(payload)
    except InvalidInputError as exc:
        work = Work(task.request.id or "import-unreadable", channel_id, payload, IMPORT_TASK)
        dead_letter(rt, work, exc.error_class, str(exc), tries.failed())
        return FAILED
    task_id = import_task_id(channel_id, row.mobile, row.line_user_id)
    earlier = markers.outcome(task_id)
    if earlier in DONE_OUTCOMES:
        return earlier
    work = Work(task_id, channel_id, payload, IMPORT_TASK)
    outcome = run_with_policy(task, rt, work, tries, lambda: import_row(rt, channel_id, row))
    if outcome == DEAD_LETTERED:
        markers.record(task_id, FAILED)
        return FAILED
    markers.record(task_id, outcome)
    rt.dead_letters.take(task_id)  # an earlier failure of this row is now resolved
    return outcome


def import_row(rt: Runtime, channel_id: str, row: ImportRow) -> str:
    channel = rt.settings.channel(channel_id)
    if channel is None:
        raise ConfigurationError(f"channel {channel_id} is not configured")
    with rt.state.user_lock(channel_id, row.line_user_id):
        return register_known_mobile(rt, channel, row.line_user_id,
                                     Identity("mobile", row.mobile, row.name))


def register_known_mobile(rt: Runtime, channel: LineChannel, user_id: str,
                          identity: Identity) -> str:
    """REGISTERED, or ALREADY_THERE when the LINE profile is already on the mobile's customer.

    A LINE user already on a customer without this mobile (e.g. a LINE-only customer made by a
    follow) is a conflict for a person: registering INSTORE first would leave a stray customer.
    """
    existing = lookup_line_customer(rt, channel, user_id)
    if existing is None:
        register_customer(rt, channel, user_id, identity)
        return REGISTERED
    if not _instore_holds_mobile(existing, identity.identifier_value):
        raise IdentityConflictError(
            f"LINE user is already customer {existing['id']}, whose INSTORE profile does not "
            "hold this mobile; link them in Member Care"
        )
    rt.state.cache_customer(channel.channel_id, user_id, int(existing["id"]))
    return ALREADY_THERE


def _instore_holds_mobile(customer: dict[str, Any], mobile: str) -> bool:
    return any(
        str(profile.get("source", "")).upper() == "INSTORE"
        and any(i.get("type") == "mobile" and i.get("value") == mobile
                for i in profile.get("identifiers") or [])
        for profile in customer.get("profiles") or []
    )
