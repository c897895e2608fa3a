"""What one task run did, written to its user's history when the run ends.

The task frame (workers.task_base) opens a journal around every run. While it is open, each
Capillary call the run makes is noted (CapillaryTransport reports calls to an `observe`
callback; the runtime passes them here too), and the code applying an event can say why it
ends as it does (`note`). When the run ends, however it ends, the journal is written in one
round trip: the event as received (first run of a message only), the calls, and the outcome
with its reason. A journal without a LINE user (a fan-out) writes nothing, and a failure to
write is logged and forgotten: the history describes the work, it never decides it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from core.line import events
from core.store import history
from workers.outcomes import Outcome

log = logging.getLogger("linecap.history")

REASON_LENGTH = 500

_open: ContextVar[RunJournal | None] = ContextVar("linecap_run_journal", default=None)


@dataclass
class RunJournal:
    """The entries of one run, kept in memory until it ends."""

    channel_id: str
    user_id: str | None
    event_ref: str  # the webhookEventId, or the job's id for other tasks
    kind: str  # the event type, or what the task calls its job ("link", "import row")
    attempt: int
    entries: list[dict[str, Any]] = field(default_factory=list)
    reason: str | None = None
    details: dict[str, Any] = field(default_factory=dict)  # ids behind the reason
    again_in: float | None = None  # seconds until a run that comes back runs again
    deferred: bool = False  # it comes back for a busy budget or user lock, not a failure

    def received(self, event: dict[str, Any], queue: str | None) -> None:
        context = event.get("deliveryContext")
        redelivery = context.get("isRedelivery") if isinstance(context, dict) else None
        self.entries.append(history.entry(
            history.RECEIVED, event=self.event_ref, type=self.kind,
            timestamp=events.timestamp_ms(event) or None, redelivery=bool(redelivery),
            queue=queue))

    def call(self, endpoint: str, status: str, seconds: float) -> None:
        self.entries.append(history.entry(history.CALL, event=self.event_ref, call=endpoint,
                                          status=status, ms=round(seconds * 1000)))

    def ended(self, outcome: str, reason: str | None = None) -> None:
        if outcome == Outcome.RETRIED and self.deferred:
            outcome = "deferred"
        self.entries.append(history.entry(
            history.OUTCOME, event=self.event_ref, type=self.kind, outcome=str(outcome),
            attempt=self.attempt, reason=_short(reason or self.reason),
            again_in_s=None if self.again_in is None else round(self.again_in, 1),
            **self.details))


def capillary_call(endpoint: str, status: str, seconds: float) -> None:
    """Matches CapillaryTransport's `observe`: the call goes into the open journal, if any."""
    journal = _open.get()
    if journal is not None:
        journal.call(endpoint, status, seconds)


def note(reason: str, **details: Any) -> None:
    """Why the current run ends as it does ("older than …"), for its outcome entry; ids go
    in `details` (`customer=…`, `latest_event=…`), where they are never taken for mobiles."""
    journal = _open.get()
    if journal is not None:
        journal.reason = reason
        journal.details.update(details)


def coming_back(reason: str, again_in: float, deferred: bool) -> None:
    """The current run ends waiting in Redis to run again (workers.failure_policy): why, when,
    and whether it is a wait (`deferred`) or a failure's backoff (`retried`)."""
    journal = _open.get()
    if journal is not None:
        journal.reason, journal.again_in, journal.deferred = reason, again_in, deferred


@contextmanager
def run_journal(journal: RunJournal, write: Any) -> Iterator[RunJournal]:
    """Open `journal` for the run inside the block; `write(journal)` records it at the end.
    An exception leaving the block is noted as the run's failure."""
    token = _open.set(journal)
    try:
        yield journal
    except BaseException as exc:
        journal.ended(Outcome.FAILED, _described(exc))
        raise
    finally:
        _open.reset(token)
        if journal.user_id is not None:
            try:
                write(journal)
            except Exception as exc:  # the history never fails the work it describes
                log.warning("history not recorded: %s", type(exc).__name__)


def _described(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _short(text: str | None) -> str | None:
    if text is None or len(text) <= REASON_LENGTH:
        return text
    return text[:REASON_LENGTH] + "…"
