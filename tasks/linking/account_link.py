"""The `accountLink` webhook event: check the nonce, then hand the link to the linking queue.

On `result: ok` with a nonce linecap issued for this very user, bound by the brand's login step,
and not yet used, the nonce is claimed and a link task is queued with the same guarantees as the
server-to-server API. A failed result, or an unknown, expired, unbound, already used or foreign
nonce, is recorded (event outcome, log line, note on the nonce) and changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from config import LineChannel
from core.line import events
from core.link_request import LinkRequest
from core.store.link_nonces import CLAIMED, UNBOUND, LinkNonce, NonceStore
from workers.messages import enqueue_link
from workers.outcomes import Outcome
from workers.runtime import Runtime

log = logging.getLogger("linecap.account_link")

Publish = Callable[[str, LinkRequest], str]


def publish_link(channel_id: str, request: LinkRequest) -> str:
    """Queue the link task from inside a worker, through the worker's own Celery app."""
    from celery import current_app

    return enqueue_link(current_app, channel_id, request)


def apply_account_link(runtime: Runtime, channel: LineChannel, event: dict[str, Any],
                       publish: Publish | None = None) -> Outcome:
    """The event's outcome; a trusted link is queued, anything else is only recorded."""
    event_id = events.event_id(event)
    if runtime.state.outcome_of(event_id):
        return Outcome.DUPLICATE
    details = event.get("link") if isinstance(event.get("link"), dict) else {}
    nonce, result = details.get("nonce"), details.get("result")
    nonce = nonce if isinstance(nonce, str) else ""
    user_id = events.user_id(event)
    nonces = NonceStore(runtime.redis, runtime.settings.link_nonce_ttl_seconds)
    if result != "ok" or user_id is None:
        outcome = Outcome.LINK_FAILED
        log.info("LINE reports the account link failed; nothing changed",
                 extra={"link_result": result})
        _note_unless_claimed(nonces, nonce, outcome)
    else:
        status, claimed = nonces.claim(nonce, event_id, channel.channel_id, user_id,
                                       runtime.settings.event_dedup_ttl_seconds)
        if status == CLAIMED and claimed is not None:
            outcome = Outcome.LINK_QUEUED
            nonces.record_outcome(nonce, outcome)  # first: the link task may finish at once
            link_id = (publish or publish_link)(channel.channel_id, _request(claimed))
            log.info("account link accepted; link queued", extra={"link_id": link_id})
        else:
            outcome = Outcome.link_refused(status)
            if status == UNBOUND:
                nonces.record_outcome(nonce, outcome)
            log.warning("account link refused: nonce %s; nothing changed", status)
    runtime.state.mark_event(event_id, outcome)
    return outcome


def _note_unless_claimed(nonces: NonceStore, nonce: str, outcome: str) -> None:
    """A failure must not overwrite the status of a nonce a successful link already used."""
    current = nonces.get(nonce)
    if current is not None and current.claimed_by is None:
        nonces.record_outcome(nonce, outcome)


def _request(claimed: LinkNonce) -> LinkRequest:
    return LinkRequest(claimed.line_user_id, mobile=claimed.mobile,
                       customer_id=claimed.customer_id, name=claimed.name, nonce=claimed.nonce)
