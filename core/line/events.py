"""What linecap reads from a raw LINE webhook event, shared by the receiver and the tasks.

Fields are read from the raw JSON (not through an SDK model) so that a follow in standby mode or
an event with unknown extra fields still keeps its userId. An event linecap acts on is checked
(`event_problem`) by the receiver, which drops and logs a bad one, and again by its task; what
is queued is only the fields linecap reads (`for_queue`), so the size of every queued event,
dead letter and log line is bounded whatever else a request carries.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from core.validation import is_line_user_id

HANDLED_EVENT_TYPES = frozenset({"follow", "unfollow", "accountLink"})
# LINE's webhookEventIds are ULIDs (26 characters); anything else is refused before it becomes a
# Redis key or a Celery task id.
_EVENT_ID = re.compile(r"[0-9A-Za-z_-]{1,64}")
# Milliseconds since the epoch. Earlier than 2001-09-09 is a value in seconds or garbage; later
# than now plus the skew would make every real event of the user "stale" until that time.
EARLIEST_TIMESTAMP_MS = 1_000_000_000_000
MAX_CLOCK_SKEW_MS = 10 * 60 * 1000
# LINE: a nonce is 10 to 255 characters (linking-accounts, "Generate a nonce").
NONCE_LENGTHS = range(10, 256)
_SHORT_TEXT = 32  # mode, source.type: one word each


def event_type(event: dict[str, Any]) -> str:
    value = event.get("type")
    return value if isinstance(value, str) else ""


def event_id(event: dict[str, Any]) -> str:
    """The webhookEventId, or a stable digest of the event when LINE sent none."""
    value = event.get("webhookEventId")
    if isinstance(value, str) and value:
        return value
    canonical = json.dumps(event, sort_keys=True, separators=(",", ":"))
    return "sha256-" + hashlib.sha256(canonical.encode()).hexdigest()[:40]


def logged_id(event: dict[str, Any]) -> str | None:
    """The webhookEventId when it is well formed: safe to log for any event, however odd."""
    value = event.get("webhookEventId")
    return value if isinstance(value, str) and _EVENT_ID.fullmatch(value) else None


def user_id(event: dict[str, Any]) -> str | None:
    source = event.get("source")
    if isinstance(source, dict):
        value = source.get("userId")
        if isinstance(value, str) and value:
            return value
    return None


def timestamp_ms(event: dict[str, Any]) -> int:
    value = event.get("timestamp")
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def event_problem(event: dict[str, Any], now_ms: int) -> str | None:
    """Why a follow, unfollow or accountLink event cannot be applied, or None when it can."""
    kind = event_type(event)
    wid = event.get("webhookEventId")
    if wid is not None and logged_id(event) is None:
        return "webhookEventId must be 1 to 64 letters, digits, _ or -"
    stamp = event.get("timestamp")
    if not isinstance(stamp, int) or isinstance(stamp, bool):
        return "timestamp must be whole milliseconds since the epoch"
    if not EARLIEST_TIMESTAMP_MS <= stamp <= now_ms + MAX_CLOCK_SKEW_MS:
        return "timestamp is out of range (in seconds, or in the future)"
    user = event.get("source", {}).get("userId") if isinstance(event.get("source"), dict) \
        else None
    if kind == "accountLink":
        return _link_problem(event.get("link"), user)
    if not is_line_user_id(user):
        return "source.userId must be U followed by 32 lowercase hex characters"
    return None


def _link_problem(link: Any, user: Any) -> str | None:
    if not isinstance(link, dict) or link.get("result") not in ("ok", "failed"):
        return "link.result must be ok or failed"
    nonce = link.get("nonce")
    if not isinstance(nonce, str) or len(nonce) not in NONCE_LENGTHS or not nonce.isascii():
        return "link.nonce must be 10 to 255 ASCII characters"
    if (link["result"] == "ok" or user is not None) and not is_line_user_id(user):
        return "source.userId must be U followed by 32 lowercase hex characters"
    return None


def for_queue(event: dict[str, Any]) -> dict[str, Any]:
    """The event as queued: the fields linecap reads and nothing else (call after
    `event_problem` found none). The reply token, a short-lived credential to message the
    user, is left out with the rest: linecap never replies."""
    queued: dict[str, Any] = {"type": event["type"], "timestamp": event["timestamp"]}
    for key in ("webhookEventId", "mode"):
        value = event.get(key)
        if isinstance(value, str) and len(value) <= 64:
            queued[key] = value
    source = event.get("source")
    if isinstance(source, dict) and is_line_user_id(source.get("userId")):
        kind = source.get("type")
        queued["source"] = {"type": kind if isinstance(kind, str) and len(kind) <= _SHORT_TEXT
                            else "user", "userId": source["userId"]}
    context = event.get("deliveryContext")
    if isinstance(context, dict) and isinstance(context.get("isRedelivery"), bool):
        queued["deliveryContext"] = {"isRedelivery": context["isRedelivery"]}
    follow = event.get("follow")
    if isinstance(follow, dict) and isinstance(follow.get("isUnblocked"), bool):
        queued["follow"] = {"isUnblocked": follow["isUnblocked"]}
    link = event.get("link")
    if isinstance(link, dict):
        queued["link"] = {"result": link.get("result"), "nonce": link.get("nonce")}
    return queued
