"""The `accountLink` webhook event: check the nonce, then hand the link to the linking queue.

On `result: ok` with the current nonce of a session linecap bound for this very user (after the
brand's login), not yet used, the session is claimed and a link task is queued with the same
guarantees as the server-to-server API. On `result: failed` (LINE sends it for any failure,
impersonation among them) the nonce is burned: its session can never be claimed. An unknown,
replaced, already used or foreign nonce is recorded (event outcome, log line, note on the
session) and changes nothing. Nothing is logged about the nonce itself.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from config import LineChannel
from core.line import events
from core.link_request import LinkRequest
from core.store.link_sessions import BURNED, CLAIMED, LinkSession, LinkSessionStore
from workers.messages import enqueue_link
from workers.outcomes import Outcome
from workers.runtime import Runtime

log = logging.getLogger("linecap.account_link")

Publish = Callable[[LineChannel, LinkRequest], str]


def publish_link(channel: LineChannel, request: LinkRequest) -> str:
    """Queue the link task from inside a worker, through the worker's own Celery app."""
    from celery import current_app

    return enqueue_link(current_app, channel, request)


def apply_account_link(runtime: Runtime, channel: LineChannel, event: dict[str, Any],
                       publish: Publish | None = None) -> Outcome:
    """The event's outcome; a trusted link is queued, anything else is only recorded."""
    event_id = events.event_id(event)
    if runtime.state.outcome_of(event_id):
        return Outcome.DUPLICATE
    problem = events.event_problem(event, int(time.time() * 1000))
    if problem:
        log.warning("accountLink event refused: %s", problem)
        runtime.state.mark_event(event_id, Outcome.INVALID)
        return Outcome.INVALID
    nonce, result = event["link"]["nonce"], event["link"]["result"]
    user_id = events.user_id(event)
    sessions = LinkSessionStore(runtime.redis, runtime.settings.link_nonce_ttl_seconds)
    if result != "ok" or user_id is None:
        outcome = Outcome.LINK_FAILED
        burned = sessions.burn(nonce, outcome) == BURNED
        log.info("LINE reports the account link failed; nothing changed%s",
                 "; its session is closed" if burned else "", extra={"link_result": result})
    else:
        status, claimed = sessions.claim(nonce, event_id, channel.channel_id, user_id,
                                         runtime.settings.event_dedup_ttl_seconds)
        if status == CLAIMED and claimed is not None:
            outcome = Outcome.LINK_QUEUED
            sessions.record_outcome(claimed.session_id, outcome)  # first: the task may be quick
            link_id = (publish or publish_link)(channel, _request(claimed))
            log.info("account link accepted; link queued", extra={"link_id": link_id})
        else:
            outcome = Outcome.link_refused(status)
            log.warning("account link refused (%s); nothing changed", status)
    runtime.state.mark_event(event_id, outcome)
    return outcome


def _request(claimed: LinkSession) -> LinkRequest:
    return LinkRequest(claimed.line_user_id, mobile=claimed.mobile,
                       customer_id=claimed.customer_id, name=claimed.name,
                       session=claimed.session_id)
