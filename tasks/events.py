"""The Celery entry task for LINE webhook events; failures follow tasks.fate's policy."""

from __future__ import annotations

import logging
from typing import Any

from celery import Task, shared_task

import workers.worker_metrics  # noqa: F401 - connects the Celery signals that record outcomes
from core.line import events
from core.logs import log_context
from tasks.apply import apply_event
from tasks.fate import Work, run_with_policy
from tasks.retry_policy import Attempts
from workers.queues import PROCESS_EVENT_TASK
from workers.runtime import get_runtime

log = logging.getLogger("linecap.tasks")


@shared_task(bind=True, name=PROCESS_EVENT_TASK, max_retries=None, acks_late=True)
def process_event(self: Task, channel_id: str, event: dict[str, Any],
                  attempts: dict | None = None) -> str:
    with log_context(webhook_event_id=events.event_id(event), channel=channel_id,
                     task_id=self.request.id, user_id=events.user_id(event)):
        return _process(self, channel_id, event, Attempts.from_kwargs(attempts))


def _process(task: Task, channel_id: str, event: dict[str, Any], tries: Attempts) -> str:
    rt = get_runtime()
    work = Work(events.event_id(event), channel_id, event, PROCESS_EVENT_TASK)
    outcome = run_with_policy(task, rt, work, tries, lambda: apply_event(rt, channel_id, event))
    log.info("event %s", outcome, extra={"outcome": outcome})
    return outcome
