"""What a Celery worker process does at its milestones: JSON logs from the start, the metrics
directory before the pool forks, its own metrics endpoint and the delayed-job mover once ready
(stopped at shutdown), the batches queue beside the events queue, and a dead pool child's gauges
dropped.

Connected when workers.celery_app is imported, which every worker, Flower and publisher does.
The endpoint runs in the worker's main process and sums the files of all its pool children; it
is separate from the web's /metrics because on Heroku the web and the worker are separate dynos.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from celery.signals import (
    celeryd_after_setup,
    setup_logging,
    worker_init,
    worker_process_shutdown,
    worker_ready,
    worker_shutdown,
)
from prometheus_client import start_http_server

from config import Settings, settings_or_exit
from core.logs import configure_logging, settings_secrets
from core.metrics import forget_process, multiprocess_registry, prepare_multiprocess_dir
from core.store.connection import redis_client
from core.store.dead_letters import DeadLetterStore
from core.store.delayed_jobs import DelayedJobs
from workers.mover import DelayedJobMover
from workers.registry import EVENT_BATCHES_QUEUE, EVENTS_QUEUE

log = logging.getLogger("linecap.metrics")
_mover: DelayedJobMover | None = None


def start_worker_metrics_server(settings: Settings) -> int | None:
    """Serve the summed metrics of this worker's processes; the port, or None when off."""
    port, host = settings.worker_metrics_port, settings.worker_metrics_host
    if port == 0:
        return None
    start_http_server(port, addr=host, registry=multiprocess_registry())
    log.info("worker metrics served", extra={"port": port, "host": host})
    return port


@setup_logging.connect
def _json_logs(**_kwargs: Any) -> None:
    """Workers log JSON lines like the web process, secrets redacted."""
    configure_logging(secrets=settings_secrets(settings_or_exit()))


@celeryd_after_setup.connect
def _consume_batches_with_events(sender: Any, instance: Any, **_kwargs: Any) -> None:
    """A worker that takes events also fans out multi-event requests, whatever its -Q says:
    a Procfile written before the batches queue existed cannot strand requests in it."""
    queues = instance.app.amqp.queues
    if EVENTS_QUEUE in queues.consume_from and EVENT_BATCHES_QUEUE not in queues.consume_from:
        queues.select_add(EVENT_BATCHES_QUEUE)


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


@worker_ready.connect
def _move_legacy_parked(**_kwargs: Any) -> None:
    """Follows parked by an earlier version move to expiring keys (once; idempotent). A
    failure only leaves them for the next start: nothing reads the old hash any more."""
    try:
        from workers.runtime import build_runtime

        moved = build_runtime(settings_or_exit()).state.move_legacy_parked()
    except Exception as exc:  # Redis down at start-up: the worker still runs
        log.error("parked follows of an earlier version not moved: %s", type(exc).__name__)
        return
    if moved:
        log.info("parked follows of an earlier version moved", extra={"count": moved})


@worker_ready.connect
def _start_mover(sender: Any = None, **_kwargs: Any) -> None:
    """Main process: publish delayed jobs when due (every worker does; claims are atomic)."""
    global _mover
    client = redis_client(settings_or_exit().redis_url)
    _mover = DelayedJobMover(sender.app, DelayedJobs(client), DeadLetterStore(client)).start()


@worker_shutdown.connect
def _stop_mover(**_kwargs: Any) -> None:
    if _mover is not None:
        _mover.stop()


@worker_process_shutdown.connect
def _forget_child(pid: int | None = None, **_kwargs: Any) -> None:
    forget_process(pid or os.getpid())
