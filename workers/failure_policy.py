"""What happens to a job that fails: wait, retry with backoff, or a dead letter.

One policy for every task (events, imports, links): transient failures come back with
full-jitter exponential backoff until the retry horizon; permanent ones, and transient ones
past the horizon, go to the dead-letter store under the task's own name so that a replay goes
back to it. A busy budget or user lock is not a failure: the job comes back after the wait
without counting an attempt.

Coming back later means waiting in Redis (core.store.delayed_jobs), not in the broker: the run
ends, its message is acknowledged, and the job is published again when due. If Redis cannot
take the wait (or the dead letter), the message is requeued instead, so it is never lost.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis
from celery.exceptions import Reject, SoftTimeLimitExceeded, TaskPredicate

from core.errors import ComeBackLater, PermanentError, TransientError
from core.store.delayed_jobs import DelayedJob
from core.store.rate_budget import current_lane
from workers import journal
from workers.outcomes import Outcome
from workers.runtime import Runtime

log = logging.getLogger("linecap.tasks")

UNEXPECTED_ERROR_RETRIES = 5
REDIS_PAUSE_SECONDS = 1.0


@dataclass(frozen=True)
class Attempts:
    """Failures so far for one job, carried in the retried message itself."""

    failures: int = 0
    first_failure_at: float | None = None

    @classmethod
    def from_kwargs(cls, data: dict | None) -> Attempts:
        data = data or {}
        return cls(int(data.get("failures", 0)), data.get("first_failure_at"))

    def to_kwargs(self) -> dict:
        return {"failures": self.failures, "first_failure_at": self.first_failure_at}

    def failed(self, now: float | None = None) -> Attempts:
        now = time.time() if now is None else now
        return Attempts(self.failures + 1, self.first_failure_at or now)


@dataclass(frozen=True)
class Job:
    """One message's work: the id its dead letter is kept under, and the task, task id and
    kwargs that run it again (a retry, or a replay of the dead letter)."""

    letter_id: str
    channel_id: str
    payload: Any
    task_name: str
    payload_kwarg: str = "event"
    task_id: str = ""  # the message's id (the dedup key); the letter id when not given

    def kwargs(self, tries: Attempts) -> dict[str, Any]:
        return {"channel_id": self.channel_id, self.payload_kwarg: self.payload,
                "attempts": tries.to_kwargs()}

    def later(self, tries: Attempts) -> DelayedJob:
        """The message that runs this job again, in the lane this run is in, as the
        delayed-job store keeps it."""
        return DelayedJob(self.task_name, self.task_id or self.letter_id, self.kwargs(tries),
                          tries.failures, current_lane())


def backoff_seconds(failures: int, max_delay: float, base: float = 2.0,
                    retry_after: float | None = None, rng: random.Random | None = None) -> float:
    """Full-jitter exponential backoff, never sooner than the server's Retry-After."""
    rng = rng or random
    ceiling = min(max_delay, base * (2 ** max(failures - 1, 0)))
    delay = rng.uniform(ceiling / 2, ceiling)
    if retry_after is not None:
        delay = max(delay, retry_after + rng.uniform(0, 1))
    return min(delay, max_delay)


def horizon_passed(attempts: Attempts, horizon_seconds: float, now: float | None = None) -> bool:
    if attempts.first_failure_at is None:
        return False
    now = time.time() if now is None else now
    return now - attempts.first_failure_at >= horizon_seconds


def run_with_policy(runtime: Runtime, job: Job, tries: Attempts,
                    apply: Callable[[], Outcome]) -> Outcome:
    """`apply()`'s outcome, DEAD_LETTERED, or RETRIED when the job waits in Redis to run
    again. Raises Celery's Reject (requeue) when Redis cannot take the wait or dead letter."""
    try:
        return _settle(runtime, job, tries, apply)
    except redis.RedisError as exc:
        # Acknowledging now would lose the job: the broker keeps the message instead. The
        # pause keeps a Redis outage from spinning the requeued message.
        log.warning("could not record the job's wait or dead letter; message requeued",
                    extra={"error": type(exc).__name__, "task": job.task_name})
        time.sleep(REDIS_PAUSE_SECONDS)
        raise Reject(type(exc).__name__, requeue=True) from None
    except SoftTimeLimitExceeded:
        # The time limit struck while the outcome was being recorded (during apply() it is a
        # failure like any other): keep the message rather than lose it.
        raise Reject("time limit", requeue=True) from None


def _settle(runtime: Runtime, job: Job, tries: Attempts,
            apply: Callable[[], Outcome]) -> Outcome:
    try:
        return apply()
    except TaskPredicate:  # Retry, Reject, Ignore: Celery's own instructions pass through
        raise
    except ComeBackLater as wait:
        # Not a failure: the attempts stay as they are. Capped like every wait.
        delay = min(wait.wait_seconds + random.uniform(0, 1),
                    runtime.settings.retry_max_delay_seconds)
        return come_back(runtime, job, tries, delay, str(wait), deferred=True)
    except PermanentError as exc:
        return dead_letter(runtime, job, exc.error_class, str(exc), tries.failed())
    except TransientError as exc:
        return retry_or_dead_letter(runtime, job, tries.failed(), exc, exc.retry_after)
    except Exception as exc:  # a bug or an unforeseen answer: retry a little, then keep it
        failed = tries.failed()
        log.exception("unexpected error in %s", job.task_name)
        if failed.failures > UNEXPECTED_ERROR_RETRIES:
            return dead_letter(runtime, job, "unexpected", f"{type(exc).__name__}: {exc}",
                               failed)
        return retry_or_dead_letter(runtime, job, failed, exc, None)


def come_back(runtime: Runtime, job: Job, tries: Attempts, delay: float, reason: str,
              deferred: bool = False) -> Outcome:
    """End this run; the job is published again in `delay` seconds with `tries`, in the lane
    it ran in. `deferred`: a wait (budget, user lock), not a failure's backoff."""
    waits = runtime.delayed.defer(job.later(tries), delay)
    log.info("job waits %.1f s: %s", waits, reason,
             extra={"attempts": tries.failures, "retry_in": round(waits, 2)})
    journal.coming_back(reason, waits, deferred)
    return Outcome.RETRIED


def dead_letter(runtime: Runtime, job: Job, error_class: str, error: str,
                tries: Attempts) -> Outcome:
    runtime.dead_letters.add(job.letter_id, job.channel_id, job.payload, error_class, error,
                             attempts=tries.failures, first_failure_at=tries.first_failure_at,
                             task=job.task_name, payload_kwarg=job.payload_kwarg)
    log.error("dead-lettered", extra={"error_class": error_class, "error": error,
                                      "attempts": tries.failures, "task": job.task_name})
    journal.note(f"{error_class}: {error}")
    return Outcome.DEAD_LETTERED


def retry_or_dead_letter(runtime: Runtime, job: Job, failed: Attempts, exc: Exception,
                         retry_after: float | None) -> Outcome:
    settings = runtime.settings
    if horizon_passed(failed, settings.retry_horizon_seconds):
        return dead_letter(runtime, job, "transient_exhausted", str(exc), failed)
    delay = backoff_seconds(failed.failures, settings.retry_max_delay_seconds,
                            retry_after=retry_after)
    log.warning("transient failure; retrying", extra={"error": str(exc),
                                                      "attempts": failed.failures})
    return come_back(runtime, job, failed, delay, f"{type(exc).__name__}: {exc}")
