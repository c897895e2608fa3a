"""The Celery side of the metrics: event outcomes, tasks in flight, and the worker's endpoint.

Connected when tasks.events is imported (the worker imports it before `worker_init`). The
endpoint runs in the worker's main process and sums the files of all its pool children; it is
separate from the web's /metrics because on Heroku the web and the worker are separate dynos.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from celery import states
from celery.signals import (
    task_postrun,
    task_prerun,
    worker_init,
    worker_process_shutdown,
    worker_ready,
)
from prometheus_client import start_http_server

from config import Settings, settings_or_exit
from core.metrics import (
    forget_process,
    get_metrics,
    multiprocess_registry,
    prepare_multiprocess_dir,
)
from workers.queues import PROCESS_EVENT_TASK

log = logging.getLogger("linecap.metrics")

FINISHED_OUTCOMES = frozenset({
    "applied", "duplicate", "stale", "ignored", "parked", "unknown_user", "dead_lettered",
})


def event_outcome(state: str | None, retval: Any) -> str:
    """The outcome word of one run of the event task, from Celery's state and return value."""
    if state == states.RETRY:
        return "retried"
    if state == states.SUCCESS:
        return retval if retval in FINISHED_OUTCOMES else "other"
    return "failed"


def start_worker_metrics_server(settings: Settings) -> int | None:
    """Serve the summed metrics of this worker's processes; the port, or None when off."""
    port, host = settings.worker_metrics_port, settings.worker_metrics_host
    if port == 0:
        return None
    start_http_server(port, addr=host, registry=multiprocess_registry())
    log.info("worker metrics served", extra={"port": port, "host": host})
    return port


@worker_init.connect
def _prepare_directory(**_kwargs: Any) -> None:
    """Main process, before the pool forks: the children inherit the directory."""
    prepare_multiprocess_dir("worker")


@worker_ready.connect
def _serve(**_kwargs: Any) -> None:
    """Main process, after the first children forked (so they do not inherit the socket).

    A port in use leaves the worker processing events without an endpoint.
    """
    try:
        start_worker_metrics_server(settings_or_exit())
    except OSError as exc:
        log.error("worker metrics endpoint not started: %s", exc)


@worker_process_shutdown.connect
def _forget_child(pid: int | None = None, **_kwargs: Any) -> None:
    forget_process(pid or os.getpid())


@task_prerun.connect
def _task_started(task: Any = None, **_kwargs: Any) -> None:
    get_metrics().task_started(task.name)


@task_postrun.connect
def _task_ended(task: Any = None, kwargs: dict | None = None, retval: Any = None,
                state: str | None = None, **_kwargs: Any) -> None:
    metrics = get_metrics()
    metrics.task_ended(task.name)
    if task.name != PROCESS_EVENT_TASK:
        return
    kwargs = kwargs or {}
    event = kwargs.get("event")
    metrics.event_finished(event_outcome(state, retval),
                           event if isinstance(event, dict) else {},
                           str(kwargs.get("channel_id") or "unknown"))
