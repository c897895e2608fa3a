"""Queue and task names shared by the receiver, the CLI and the worker (no Celery app needed)."""

EVENTS_QUEUE = "line-events"
EVENT_BATCHES_QUEUE = "line-event-batches"
LINKING_QUEUE = "linking"
IMPORTS_QUEUE = "imports"
PROCESS_EVENT_TASK = "linecap.process_event"
FAN_OUT_TASK = "linecap.fan_out_events"
