"""Queue and task names shared by the receiver, the CLI and the worker (no Celery app needed)."""

EVENTS_QUEUE = "line-events"
LINKING_QUEUE = "linking"
IMPORTS_QUEUE = "imports"
PROCESS_EVENT_TASK = "linecap.process_event"
