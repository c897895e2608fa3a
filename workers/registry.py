"""Every task linecap runs and the queue it runs on: the one table that Celery's routing, the
dead-letter replay, the queue-depth metrics and every worker's queue list are read from.

Plain names only (no Celery import), so the web, the CLI and the tests can read it cheaply.
"""

from __future__ import annotations

from core.errors import LinecapError

EVENTS_QUEUE = "line-events"
EVENT_BATCHES_QUEUE = "line-event-batches"
LINKING_QUEUE = "linking"
IMPORTS_QUEUE = "imports"

PROCESS_EVENT_TASK = "linecap.process_event"
FAN_OUT_TASK = "linecap.fan_out_events"
LINK_TASK = "linecap.link_customer"
IMPORT_TASK = "linecap.import_user"

TASK_QUEUES: dict[str, str] = {
    PROCESS_EVENT_TASK: EVENTS_QUEUE,
    FAN_OUT_TASK: EVENT_BATCHES_QUEUE,
    LINK_TASK: LINKING_QUEUE,
    IMPORT_TASK: IMPORTS_QUEUE,
}
# The modules that declare them, for Celery's `include`.
TASK_MODULES = ("tasks.events.entry", "tasks.linking.entry", "tasks.imports.entry")
# Every queue, in the order a worker lists them.
QUEUES: tuple[str, ...] = tuple(dict.fromkeys(TASK_QUEUES.values()))


class UnknownTask(LinecapError):
    """A task name this version of linecap does not declare (a dead letter from elsewhere)."""

    error_class = "unknown_task"


def queue_for(task_name: str) -> str:
    try:
        return TASK_QUEUES[task_name]
    except KeyError:
        raise UnknownTask(f"no task {task_name!r} in this version of linecap") from None


def worker_queues() -> str:
    """The `-Q` value of a worker that runs everything (the Procfile's worker runs without
    `-Q`, which means the same)."""
    return ",".join(QUEUES)
