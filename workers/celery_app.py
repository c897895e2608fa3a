"""The Celery application and the reliability settings that make "never lose" hold.

`celery -A workers.celery_app worker|flower` reads settings from the environment and stops
with one line naming the bad variable if they are wrong.
"""

from __future__ import annotations

from celery import Celery
from kombu import Queue

import workers.signals  # noqa: F401 - connects the worker's start-up and logging hooks
from config import Settings, settings_or_exit
from config.redis_tls import tls_options
from workers.leases import MessageLeases
from workers.registry import EVENTS_QUEUE, QUEUES, TASK_MODULES, TASK_QUEUES

# A hard stop this long after the soft time limit, for a run that ignores the soft one.
HARD_TIME_LIMIT_GRACE_SECONDS = 30


def celery_config(settings: Settings) -> dict:
    config = {
        "broker_url": settings.redis_url,
        "broker_connection_retry_on_startup": True,
        "broker_transport_options": {
            # Short: no message waits in a worker (waits are kept in Redis, see
            # workers.failure_policy), and a live worker renews the messages it holds
            # (workers.leases), so only a dead worker's messages ever reach this age.
            "visibility_timeout": settings.visibility_timeout_seconds,
            # Sweep for a dead worker's unacknowledged messages every 10 s, so they return
            # soon after the visibility timeout rather than up to 100 s later.
            "unacked_restore_interval": 10,
            "unacked_restore_throttle": 1,
            # The sweep's mutex (kombu's default is 300 s): a worker killed while holding it
            # would stop every other worker's sweep for that long. A second sweep running
            # at once is harmless (each restore is a WATCHed transaction).
            "unacked_mutex_expire": 10,
            "socket_connect_timeout": 2,
            "socket_timeout": 5,
        },
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "task_ignore_result": True,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        # A run that outlives the soft limit gets SoftTimeLimitExceeded (a failure the policy
        # retries); one that ignores it is killed at the hard limit and its message requeued
        # (LinecapTask.acks_on_failure_or_timeout): renewed leases never expire on a hung run.
        "task_soft_time_limit": settings.task_time_limit_seconds,
        "task_time_limit": settings.task_time_limit_seconds + HARD_TIME_LIMIT_GRACE_SECONDS,
        "worker_prefetch_multiplier": 1,
        "task_default_queue": EVENTS_QUEUE,
        # A worker started without -Q consumes every queue of the registry.
        "task_queues": [Queue(name) for name in QUEUES],
        "task_routes": {task: {"queue": queue} for task, queue in TASK_QUEUES.items()},
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
    app = Celery("linecap", include=list(TASK_MODULES))
    app.conf.update(celery_config(settings))
    app.steps["consumer"].add(MessageLeases)
    return app


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
