"""The Celery task on the `linking` queue: one link request, with the events' failure policy.

Transient failures come back with backoff until the retry horizon, permanent ones (an identity
conflict, a customer id Capillary does not know) become dead letters named after this task, so
`linecap dlq replay` sends them back here with the same `channel_id` and `event`.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Task, shared_task

from core.line import events
from core.linking import LINK_TASK, LinkRequest, link_letter_id
from core.logs import log_context
from tasks.fate import Work, run_with_policy
from tasks.linking import apply_link
from tasks.retry_policy import Attempts
from workers.runtime import get_runtime

log = logging.getLogger("linecap.tasks")


@shared_task(bind=True, name=LINK_TASK, max_retries=None, acks_late=True)
def link_customer(self: Task, channel_id: str, event: dict[str, Any],
                  attempts: dict | None = None) -> str:
    work = Work(link_letter_id(channel_id, event), channel_id, event, LINK_TASK)
    with log_context(link_id=work.letter_id, channel=channel_id, task_id=self.request.id,
                     user_id=events.user_id(event)):
        rt = get_runtime()
        outcome = run_with_policy(
            self, rt, work, Attempts.from_kwargs(attempts),
            lambda: apply_link(rt, channel_id, LinkRequest.from_event(event)))
        log.info("link %s", outcome, extra={"outcome": outcome})
        return outcome
