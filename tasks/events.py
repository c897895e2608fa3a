"""The Celery entry task for LINE webhook events, and what happens to an event that fails.

Transient failures come back with exponential backoff until the retry horizon; permanent ones,
and transient ones past the horizon, go to the dead-letter store. A busy budget or user lock is
not a failure: the event comes back after the wait without counting an attempt.
"""

from __future__ import annotations

import logging
import random
from typing import Any

from celery import Task, shared_task

from tasks.apply import apply_event
from tasks.retry_policy import Attempts, backoff_seconds, horizon_passed
from workers import events
from workers.errors import ComeBackLater, PermanentError, TransientError
from workers.logs import log_context
from workers.runtime import Runtime, get_runtime

log = logging.getLogger("linecap.tasks")

UNEXPECTED_ERROR_RETRIES = 5


@shared_task(bind=True, name="linecap.process_event", max_retries=None, acks_late=True)
def process_event(self: Task, channel_id: str, event: dict[str, Any],
                  attempts: dict | None = None) -> str:
    with log_context(webhook_event_id=events.event_id(event), channel=channel_id,
                     task_id=self.request.id, user_id=events.user_id(event)):
        return _process(self, channel_id, event, Attempts.from_kwargs(attempts))


def _process(self: Task, channel_id: str, event: dict[str, Any], tries: Attempts) -> str:
    rt = get_runtime()
    try:
        outcome = apply_event(rt, channel_id, event)
    except ComeBackLater as wait:
        # Capped like every countdown, so no message waits in a worker past the visibility
        # timeout; a longer budget wait simply checks again.
        countdown = min(wait.wait_seconds + random.uniform(0, 1),
                        rt.settings.retry_max_delay_seconds)
        kwargs = _kwargs(channel_id, event, tries)
        raise self.retry(countdown=countdown, args=(), kwargs=kwargs) from None
    except PermanentError as exc:
        return dead_letter(rt, channel_id, event, exc.error_class, str(exc), tries.failed())
    except TransientError as exc:
        return _retry_or_dead_letter(self, rt, channel_id, event, tries.failed(), exc,
                                     exc.retry_after)
    except Exception as exc:  # a bug or an unforeseen answer: retry a little, then keep it
        failed = tries.failed()
        log.exception("unexpected error applying event")
        if failed.failures > UNEXPECTED_ERROR_RETRIES:
            return dead_letter(rt, channel_id, event, "unexpected",
                               f"{type(exc).__name__}: {exc}", failed)
        return _retry_or_dead_letter(self, rt, channel_id, event, failed, exc, None)
    log.info("event %s", outcome, extra={"outcome": outcome})
    return outcome


def dead_letter(rt: Runtime, channel_id: str, event: dict, error_class: str, error: str,
                tries: Attempts) -> str:
    rt.dead_letters.add(events.event_id(event), channel_id, event, error_class, error,
                        attempts=tries.failures, first_failure_at=tries.first_failure_at)
    log.error("event dead-lettered", extra={"error_class": error_class, "error": error,
                                            "attempts": tries.failures})
    return "dead_lettered"


def _retry_or_dead_letter(task: Task, rt: Runtime, channel_id: str, event: dict,
                          failed: Attempts, exc: Exception, retry_after: float | None) -> str:
    settings = rt.settings
    if horizon_passed(failed, settings.retry_horizon_seconds):
        return dead_letter(rt, channel_id, event, "transient_exhausted", str(exc), failed)
    countdown = backoff_seconds(failed.failures, settings.retry_max_delay_seconds,
                                retry_after=retry_after)
    log.warning("transient failure; retrying", extra={
        "error": str(exc), "attempts": failed.failures, "countdown": round(countdown, 2)})
    kwargs = _kwargs(channel_id, event, failed)
    raise task.retry(countdown=countdown, args=(), kwargs=kwargs) from None


def _kwargs(channel_id: str, event: dict, tries: Attempts) -> dict:
    return {"channel_id": channel_id, "event": event, "attempts": tries.to_kwargs()}
