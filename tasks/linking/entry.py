"""The Celery task on the `linking` queue: one link request, under the common failure policy.

Transient failures come back with backoff until the retry horizon, permanent ones (an identity
conflict, a customer id Capillary does not know) become dead letters named after this task, so
`linecap dlq replay` sends them back here with the same `channel_id` and `event`.
"""

from __future__ import annotations

from typing import Any

from core.line import events
from core.link_request import LinkRequest, link_letter_id
from tasks.linking.link import apply_link
from workers.outcomes import Outcome
from workers.registry import LINK_TASK
from workers.runtime import Runtime, get_runtime
from workers.task_base import linecap_task


def _letter_id(channel_id: str, event: Any) -> str:
    """The keyed link id (the key is the channel's), so the worker's runtime is asked."""
    return link_letter_id(get_runtime().settings.channel(channel_id), event)


def _fields(channel_id: str, event: Any) -> dict[str, Any]:
    return {"link_id": _letter_id(channel_id, event), "channel": channel_id,
            "user_id": events.user_id(event) if isinstance(event, dict) else None}


@linecap_task(LINK_TASK, job_id=_letter_id, log_fields=_fields, noun="link")
def link_customer(runtime: Runtime, channel_id: str, event: dict[str, Any]) -> Outcome:
    return apply_link(runtime, channel_id, LinkRequest.from_event(event))
