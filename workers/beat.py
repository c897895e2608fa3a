"""The beat process: `celery -A workers.celery_app beat --scheduler workers.beat:LeasedScheduler`.

It sends each channel's reconciliation tick (`linecap.reconcile_followers` with an empty step)
every LINECAP_BEAT_TICK_SECONDS; the workers decide whether a run is due, from Redis, so a
restarted beat neither skips nor repeats a run. Exactly one beat sends at a time, however many
are started: each holds the beat lease in Redis before sending and renews it every few seconds;
the others stand by and take over within LEASE_SECONDS when the holder stops (at once when it
stops cleanly). A tick nobody takes within its interval expires instead of piling up.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from typing import Any

import redis
from celery.beat import Scheduler

from config import Settings, settings_or_exit
from core.store.connection import redis_client
from core.store.lease import Lease
from workers.messages import short_kwargsrepr
from workers.registry import RECONCILE_TASK, queue_for

log = logging.getLogger("linecap.beat")

# After `celery -A workers.celery_app`: the Procfile's beat and `linecap up`'s.
BEAT_ARGS = ("beat", "--scheduler", "workers.beat:LeasedScheduler", "--loglevel", "INFO")
LEASE_KEY = "linecap:beat:lease"
LEASE_SECONDS = 30
RENEW_SECONDS = 5  # the longest the scheduler sleeps between two renewals


def reconciliation_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    """One tick entry per channel that has an interval (Celery's beat_schedule format)."""
    tick = settings.beat_tick_seconds
    entries = {}
    for channel in settings.channels:
        if settings.reconcile_interval(channel.channel_id) <= 0:
            continue
        kwargs = {"channel_id": channel.channel_id, "step": {}}
        entries[f"reconcile {channel.channel_id}"] = {
            "task": RECONCILE_TASK, "schedule": float(tick), "kwargs": kwargs,
            "options": {"queue": queue_for(RECONCILE_TASK), "expires": tick,
                        "kwargsrepr": short_kwargsrepr(kwargs)}}
    return entries


class LeasedScheduler(Scheduler):
    """Celery's in-memory scheduler, sending only while this process holds the beat lease."""

    max_interval = RENEW_SECONDS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._settings = settings_or_exit()
        holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._lease = Lease(redis_client(self._settings.redis_url, socket_timeout=2.0,
                                         fail_fast=True), LEASE_KEY, LEASE_SECONDS, holder)
        self._part = ""  # leading, standing by, or unreachable
        super().__init__(*args, **kwargs)

    def install_default_entries(self, data: Any) -> None:
        """No `celery.backend_cleanup`: linecap keeps no task results."""

    def setup_schedule(self) -> None:
        super().setup_schedule()
        self.update_from_dict(reconciliation_schedule(self._settings))
        log.info("beat schedule: %d reconciliation tick(s) every %d s",
                 len(self.schedule), self._settings.beat_tick_seconds,
                 extra={"holder": self._lease.holder})

    def tick(self, *args: Any, **kwargs: Any) -> float:
        if not self._hold():
            return self.max_interval
        return super().tick(*args, **kwargs)

    def close(self) -> None:
        if self._part == "leading":
            try:
                self._lease.release()
                log.info("beat lease released", extra={"holder": self._lease.holder})
            except redis.RedisError:
                pass  # it expires by itself
        super().close()

    def _hold(self) -> bool:
        """Take or renew the lease; one log line each time this beat's part changes."""
        try:
            part = "leading" if self._lease.hold() else "standing by"
        except redis.RedisError as exc:
            part = "unreachable"
            if self._part != part:
                log.error("beat lease unreachable (%s); sending nothing until Redis answers",
                          type(exc).__name__)
        if part != self._part and part == "leading":
            log.info("beat lease held: this beat sends the schedule",
                     extra={"holder": self._lease.holder})
        elif part != self._part and part == "standing by":
            log.info("another beat holds the lease; standing by",
                     extra={"holder": self._lease.holder, "lease_holder": self._safe_holder()})
        self._part = part
        return part == "leading"

    def _safe_holder(self) -> str | None:
        try:
            return self._lease.current_holder()
        except redis.RedisError:
            return None
