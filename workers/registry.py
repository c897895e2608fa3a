"""Every task linecap runs and the queue it runs on: the one table that Celery's routing, the
dead-letter replay, the queue-depth metrics and every worker's queue list are read from.

Two lanes share Capillary's budget: `live` (webhook events, links a person waits for) may use
all of it; `bulk` (back-fills, reconciliation, imports, replays) only what the live reserve
leaves (core.store.rate_budget). A task runs in the lane of the queue it came from.

Plain names only (no Celery import), so the web, the CLI and the tests can read it cheaply.
"""

from __future__ import annotations

from core.errors import LinecapError
from core.store.rate_budget import BULK, LIVE

EVENTS_QUEUE = "line-events"
EVENT_BATCHES_QUEUE = "line-event-batches"
LINKING_QUEUE = "linking"
BULK_EVENTS_QUEUE = "line-events-bulk"
IMPORTS_QUEUE = "imports"
RECONCILE_QUEUE = "reconciliation"

PROCESS_EVENT_TASK = "linecap.process_event"
FAN_OUT_TASK = "linecap.fan_out_events"
LINK_TASK = "linecap.link_customer"
IMPORT_TASK = "linecap.import_user"
IMPORT_BATCH_TASK = "linecap.import_rows"
BACKFILL_TASK = "linecap.backfill_followers"
RECONCILE_TASK = "linecap.reconcile_followers"

# A task's queue in each lane it runs in; the first is where Celery routes it by default.
TASK_LANES: dict[str, dict[str, str]] = {
    PROCESS_EVENT_TASK: {LIVE: EVENTS_QUEUE, BULK: BULK_EVENTS_QUEUE},
    FAN_OUT_TASK: {LIVE: EVENT_BATCHES_QUEUE},
    LINK_TASK: {LIVE: LINKING_QUEUE},
    IMPORT_TASK: {BULK: IMPORTS_QUEUE},
    IMPORT_BATCH_TASK: {BULK: IMPORTS_QUEUE},
    BACKFILL_TASK: {BULK: BULK_EVENTS_QUEUE},
    RECONCILE_TASK: {BULK: RECONCILE_QUEUE},
}
TASK_QUEUES: dict[str, str] = {task: next(iter(lanes.values()))
                               for task, lanes in TASK_LANES.items()}
LANE_OF_QUEUE: dict[str, str] = {queue: lane_name for lanes in TASK_LANES.values()
                                 for lane_name, queue in lanes.items()}
# The modules that declare them, for Celery's `include`.
TASK_MODULES = ("tasks.events.entry", "tasks.linking.entry", "tasks.imports.entry",
                "tasks.followers.entry")
# Every queue, in the order a worker lists them.
QUEUES: tuple[str, ...] = tuple(dict.fromkeys(
    queue for lanes in TASK_LANES.values() for queue in lanes.values()))


class UnknownTask(LinecapError):
    """A task name this version of linecap does not declare (a dead letter from elsewhere)."""

    error_class = "unknown_task"


def queue_for(task_name: str, lane: str | None = None) -> str:
    """The task's queue in `lane` (its default one when None or when it has no such lane)."""
    try:
        lanes = TASK_LANES[task_name]
    except KeyError:
        raise UnknownTask(f"no task {task_name!r} in this version of linecap") from None
    return lanes.get(lane or "", next(iter(lanes.values())))


def lane_of(queue: str | None) -> str:
    """The lane a message delivered from `queue` runs in (live when unknown)."""
    return LANE_OF_QUEUE.get(queue or "", LIVE)


def worker_queues() -> str:
    """The `-Q` value of a worker that runs everything (the Procfile's worker runs without
    `-Q`, which means the same)."""
    return ",".join(QUEUES)
