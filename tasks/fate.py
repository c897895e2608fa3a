"""What happens to a unit of work that fails: wait, retry with backoff, or a dead letter.

One policy for every task (events, imports, links): transient failures come back with
exponential backoff until the retry horizon; permanent ones, and transient ones past the
horizon, go to the dead-letter store under the task's own name so that a replay goes back to
it. A busy budget or user lock is not a failure: the work comes back after the wait without
counting an attempt.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from celery import Task

from core.errors import ComeBackLater, PermanentError, TransientError
from tasks.retry_policy import Attempts, backoff_seconds, horizon_passed
from workers.runtime import Runtime

log = logging.getLogger("linecap.tasks")

DEAD_LETTERED = "dead_lettered"
UNEXPECTED_ERROR_RETRIES = 5


@dataclass(frozen=True)
class Work:
    """One message's work: its dead-letter id, and the task and kwargs that replay it."""

    letter_id: str
    channel_id: str
    payload: dict[str, Any]
    task_name: str

    def kwargs(self, tries: Attempts) -> dict[str, Any]:
        return {"channel_id": self.channel_id, "event": self.payload,
                "attempts": tries.to_kwargs()}


def run_with_policy(task: Task, rt: Runtime, work: Work, tries: Attempts,
                    apply: Callable[[], str]) -> str:
    """`apply()`'s outcome, or DEAD_LETTERED; raises Celery's Retry to come back later."""
    try:
        return apply()
    except ComeBackLater as wait:
        # Capped like every countdown, so no message waits in a worker past the visibility
        # timeout; a longer budget wait simply checks again.
        countdown = min(wait.wait_seconds + random.uniform(0, 1),
                        rt.settings.retry_max_delay_seconds)
        raise task.retry(countdown=countdown, args=(), kwargs=work.kwargs(tries)) from None
    except PermanentError as exc:
        return dead_letter(rt, work, exc.error_class, str(exc), tries.failed())
    except TransientError as exc:
        return retry_or_dead_letter(task, rt, work, tries.failed(), exc, exc.retry_after)
    except Exception as exc:  # a bug or an unforeseen answer: retry a little, then keep it
        failed = tries.failed()
        log.exception("unexpected error in %s", work.task_name)
        if failed.failures > UNEXPECTED_ERROR_RETRIES:
            return dead_letter(rt, work, "unexpected", f"{type(exc).__name__}: {exc}", failed)
        return retry_or_dead_letter(task, rt, work, failed, exc, None)


def dead_letter(rt: Runtime, work: Work, error_class: str, error: str, tries: Attempts) -> str:
    rt.dead_letters.add(work.letter_id, work.channel_id, work.payload, error_class, error,
                        attempts=tries.failures, first_failure_at=tries.first_failure_at,
                        task=work.task_name)
    log.error("dead-lettered", extra={"error_class": error_class, "error": error,
                                      "attempts": tries.failures, "task": work.task_name})
    return DEAD_LETTERED


def retry_or_dead_letter(task: Task, rt: Runtime, work: Work, failed: Attempts, exc: Exception,
                         retry_after: float | None) -> str:
    settings = rt.settings
    if horizon_passed(failed, settings.retry_horizon_seconds):
        return dead_letter(rt, work, "transient_exhausted", str(exc), failed)
    countdown = backoff_seconds(failed.failures, settings.retry_max_delay_seconds,
                                retry_after=retry_after)
    log.warning("transient failure; retrying", extra={
        "error": str(exc), "attempts": failed.failures, "countdown": round(countdown, 2)})
    raise task.retry(countdown=countdown, args=(), kwargs=work.kwargs(failed)) from None
