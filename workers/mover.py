"""Publish delayed jobs (core.store.delayed_jobs) to their queue once they are due.

Every worker's main process runs one mover thread; any number may run at once, because each
claim is atomic and leased (a job goes to one mover at a time, and back to the others if that
mover dies before it has published). A publish that fails leaves the job in Redis for the next
claim after its lease. A job whose task this version does not know is dead-lettered, like any
other work that cannot run.
"""

from __future__ import annotations

import logging
import threading

import redis
from celery import Celery

from core.store.dead_letters import DeadLetterStore
from core.store.delayed_jobs import Claim, DelayedJobs
from workers.messages import is_broker_error, send
from workers.registry import UnknownTask

log = logging.getLogger("linecap.mover")

BATCH = 100
POLL_SECONDS = 1.0
LEASE_SECONDS = 30.0


class DelayedJobMover:
    """Moves due jobs into their queues from a daemon thread until stopped."""

    def __init__(self, celery_app: Celery, jobs: DelayedJobs, dead_letters: DeadLetterStore,
                 poll_seconds: float = POLL_SECONDS, lease_seconds: float = LEASE_SECONDS
                 ) -> None:
        self._celery = celery_app
        self._jobs = jobs
        self._dead_letters = dead_letters
        self._poll = poll_seconds
        self._lease = lease_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing = False

    def start(self) -> DelayedJobMover:
        self._thread = threading.Thread(target=self._run, name="linecap-mover", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def move_due(self) -> int:
        """One pass: publish the jobs due now (up to one batch); how many were published."""
        moved = 0
        for claim in self._jobs.claim(BATCH, self._lease):
            if not self._publish(claim):
                break  # the broker refuses: the rest come back after their lease
            self._jobs.done(claim)
            moved += 1
        return moved

    def _publish(self, claim: Claim) -> bool:
        job = claim.job
        try:
            send(self._celery, job.task, job.kwargs, job.task_id, lane=job.lane)
        except UnknownTask as exc:
            self._dead_letter(job.task, job.task_id, job.kwargs, str(exc))
            return True
        except Exception as exc:
            if not is_broker_error(exc):
                raise
            log.warning("could not publish a due job; it stays in Redis",
                        extra={"task_id": job.task_id, "error": type(exc).__name__})
            return False
        log.info("due job published", extra={"task_id": job.task_id, "task": job.task})
        return True

    def _dead_letter(self, task: str, task_id: str, kwargs: dict, error: str) -> None:
        payload = kwargs.get("event", kwargs)
        attempts = (kwargs.get("attempts") or {}).get("failures", 0)
        self._dead_letters.add(task_id, str(kwargs.get("channel_id", "")),
                               payload if isinstance(payload, dict) else {"payload": payload},
                               "unknown_task", error, attempts=int(attempts), task=task)
        log.error("due job for an unknown task dead-lettered",
                  extra={"task_id": task_id, "task": task})

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                moved = self.move_due()
                self._recovered()
            except (redis.RedisError, OSError) as exc:
                self._failed(exc)
                moved = 0
            except Exception:
                log.exception("mover pass failed")
                moved = 0
            if moved < BATCH:
                self._stop.wait(self._poll)

    def _failed(self, exc: Exception) -> None:
        """Log an outage once, not once a second."""
        if not self._failing:
            log.warning("mover cannot reach Redis; due jobs wait until it can",
                        extra={"error": type(exc).__name__})
        self._failing = True

    def _recovered(self) -> None:
        if self._failing:
            log.info("mover reaches Redis again")
        self._failing = False
