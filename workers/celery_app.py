"""The Celery application and the reliability settings that make "never lose" hold.

`celery -A workers.celery_app worker|flower` reads settings from the environment and stops
with one line naming the bad variable if they are wrong.
"""

from __future__ import annotations

from celery import Celery
from celery.signals import celeryd_after_setup, setup_logging

from config import Settings, settings_or_exit
from config.redis_tls import tls_options
from workers.queues import (
    EVENT_BATCHES_QUEUE,
    EVENTS_QUEUE,
    FAN_OUT_TASK,
    IMPORTS_QUEUE,
    LINKING_QUEUE,
    PROCESS_EVENT_TASK,
)


def celery_config(settings: Settings) -> dict:
    config = {
        "broker_url": settings.redis_url,
        "broker_connection_retry_on_startup": True,
        "broker_transport_options": {
            # Longer than any countdown we schedule (retry_max_delay), so Redis does not hand
            # a waiting retry to a second worker; short enough that a dead worker's messages
            # come back the same hour.
            "visibility_timeout": settings.visibility_timeout_seconds,
            # Sweep for a dead worker's unacknowledged messages every 10 s, so they return
            # soon after the visibility timeout rather than up to 100 s later.
            "unacked_restore_interval": 10,
            "unacked_restore_throttle": 1,
            "socket_connect_timeout": 2,
            "socket_timeout": 5,
        },
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "task_ignore_result": True,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_default_queue": EVENTS_QUEUE,
        "task_routes": {
            PROCESS_EVENT_TASK: {"queue": EVENTS_QUEUE},
            FAN_OUT_TASK: {"queue": EVENT_BATCHES_QUEUE},
            "linecap.link_*": {"queue": LINKING_QUEUE},
            "linecap.import_*": {"queue": IMPORTS_QUEUE},
        },
        "worker_send_task_events": True,
        # Flower shows a task from the moment it is queued (find a webhookEventId still
        # waiting); costs the receiver a second publish per event (see docs/BENCHMARKS.md).
        "task_send_sent_event": settings.task_sent_events,
        "worker_hijack_root_logger": False,
        "broker_pool_limit": 10,
    }
    tls = tls_options(settings.redis_url)
    if tls is not None:
        # rediss:// read as redis-py reads it: verify unless the URL says ssl_cert_reqs=none.
        # kombu lets the URL's ssl_* query replace this (same values), but with none in the
        # URL it would fall back to CERT_NONE, trusting any certificate. Flower reads only this.
        config["broker_use_ssl"] = tls
    return config


def make_celery(settings: Settings | None = None) -> Celery:
    if settings is None:
        settings = settings_or_exit()
    app = Celery("linecap", include=["tasks.events", "tasks.fan_out", "tasks.imports",
                                     "tasks.link_tasks"])
    app.conf.update(celery_config(settings))
    return app


@celeryd_after_setup.connect
def _consume_batches_with_events(sender, instance, **_kwargs) -> None:
    """A worker that takes events also fans out multi-event requests, whatever its -Q says:
    a Procfile written before the batches queue existed cannot strand requests in it."""
    queues = instance.app.amqp.queues
    if EVENTS_QUEUE in queues.consume_from and EVENT_BATCHES_QUEUE not in queues.consume_from:
        queues.select_add(EVENT_BATCHES_QUEUE)


@setup_logging.connect
def _json_logs(**_kwargs) -> None:
    """Workers log JSON lines like the web process, secrets redacted."""
    from core.logs import configure_logging, settings_secrets

    configure_logging(secrets=settings_secrets(settings_or_exit()))


_default_app: Celery | None = None


def __getattr__(name: str) -> Celery:
    """`celery -A workers.celery_app` finds the app here; built on first use, from the env.

    Lazy, so that importing make_celery (tests, the CLI) does not need a configured environment.
    """
    global _default_app
    if name not in ("app", "celery", "celery_app"):
        raise AttributeError(name)
    if _default_app is None:
        _default_app = make_celery()
    return _default_app
