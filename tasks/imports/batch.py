"""A batch of import rows, registered with Capillary's batch API: the rows' INSTORE profiles
(by mobile) in one call per batch, then their LINE profiles in the next
(tasks.batch_registration).

Registering first is safe here, unlike for an unknown follower: every row names a mobile, so an
INSTORE profile that already exists is the row's own member (8006, looked up), never a stray;
it saves the lookup a row registered alone would make. Each row ends with its own marker (the
CLI waits on them) and, when refused, its own dead letter, replayed through the single-row
task.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

from celery import current_app

from core.errors import ComeBackLater, LinecapError, TransientError
from core.store.import_markers import ImportMarkers
from core.store.rate_budget import BULK
from tasks.batch_registration import Person, Registered, register_people
from tasks.customers import Identity
from tasks.imports.rows import DONE_OUTCOMES, ImportRow, import_task_id
from workers.failure_policy import Attempts, Job, dead_letter
from workers.messages import send
from workers.outcomes import Outcome
from workers.registry import IMPORT_TASK
from workers.runtime import Runtime

Publish = Callable[[str, ImportRow, str], None]


def import_rows(runtime: Runtime, channel_id: str, rows: list[dict[str, Any]],
                publish: Publish | None = None) -> Outcome:
    """Register the rows not done yet, with the batch calls reserved first. A row whose user
    is busy, or whose registration met a transient error, goes on as a single-row task (which
    retries on its own)."""
    channel = runtime.channel(channel_id)
    markers = ImportMarkers(runtime.redis)
    publish = publish or _publish_single
    todo: list[tuple[ImportRow, str]] = []
    with ExitStack() as locks:
        for payload in rows:
            row = ImportRow.from_payload(payload)
            task_id = import_task_id(channel, row.mobile, row.line_user_id)
            if markers.outcome(task_id) in DONE_OUTCOMES:
                continue
            try:
                locks.enter_context(runtime.state.user_lock(channel_id, row.line_user_id))
            except ComeBackLater:
                publish(channel_id, row, task_id)
                continue
            todo.append((row, task_id))
        people = [Person(row.line_user_id, Identity("mobile", row.mobile, row.name))
                  for row, _ in todo]
        batches = math.ceil(len(people) / max(1, runtime.settings.batch_size))
        # Both batch calls up front: a LINE batch refused for budget after its INSTORE batch
        # would bring the rows back to an INSTORE batch answering 8006, a lookup each.
        with runtime.limiter.reserve({"bulk": 2 * batches}):
            results = register_people(runtime, channel, people) if people else {}
    for row, task_id in todo:
        result = results.get(row.line_user_id)
        if isinstance(result, Registered):
            outcome = Outcome.REGISTERED if result.new_line_profile else Outcome.ALREADY_THERE
            markers.record(task_id, outcome)
            runtime.dead_letters.take(task_id)  # an earlier failure of this row is resolved
        elif isinstance(result, TransientError | ComeBackLater):
            publish(channel_id, row, task_id)
        else:
            error = result or LinecapError("no registration answer")
            dead_letter(runtime, Job(task_id, channel_id, row.to_payload(), IMPORT_TASK),
                        error.error_class, str(error), Attempts().failed())
            markers.record(task_id, Outcome.FAILED)
    return Outcome.APPLIED


def _publish_single(channel_id: str, row: ImportRow, task_id: str) -> None:
    send(current_app, IMPORT_TASK, {"channel_id": channel_id, "event": row.to_payload()},
         task_id, lane=BULK)
