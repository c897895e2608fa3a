"""The Celery tasks of import rows (`imports` queue, bulk lane): a batch of rows as the CLI sends
them, and one row (a busy user, a transient failure, a dead letter replayed). The CLI waits on
the rows' markers."""

from __future__ import annotations

from typing import Any

from core.store.import_markers import ImportMarkers
from tasks.imports.batch import import_rows
from tasks.imports.rows import import_row, row_task_id
from workers.failure_policy import Job
from workers.outcomes import Outcome
from workers.registry import IMPORT_BATCH_TASK, IMPORT_TASK
from workers.runtime import Runtime
from workers.task_base import linecap_task


def _record(runtime: Runtime, job: Job, outcome: Outcome) -> None:
    """The marker the CLI waits for; a row that now worked drops its earlier dead letter."""
    markers = ImportMarkers(runtime.redis)
    if outcome == Outcome.DEAD_LETTERED:
        markers.record(job.letter_id, Outcome.FAILED)
        return
    markers.record(job.letter_id, outcome)
    runtime.dead_letters.take(job.letter_id)


def _fields(channel_id: str, payload: Any) -> dict[str, Any]:
    user = payload.get("line_user_id") if isinstance(payload, dict) else None
    return {"channel": channel_id, "user_id": user}


@linecap_task(IMPORT_TASK, job_id=row_task_id, log_fields=_fields, after_run=_record,
              noun="import row")
def import_user(runtime: Runtime, channel_id: str, payload: dict[str, Any]) -> Outcome:
    """`event` is the row's payload; the name matches dead letters so `dlq replay` works."""
    return import_row(runtime, channel_id, payload)


@linecap_task(IMPORT_BATCH_TASK, job_id=lambda *_: None, payload="rows",
              log_fields=lambda channel_id, rows: {"channel": channel_id}, noun="import batch")
def import_batch(runtime: Runtime, channel_id: str, rows: list[dict[str, Any]]) -> Outcome:
    return import_rows(runtime, channel_id, rows)
