"""What linecap reads from a raw LINE webhook event, shared by the receiver and the tasks.

Fields are read from the raw JSON (not through an SDK model) so that a follow in standby mode or
an event with unknown extra fields still keeps its userId.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

HANDLED_EVENT_TYPES = frozenset({"follow", "unfollow", "accountLink"})


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


def user_id(event: dict[str, Any]) -> str | None:
    source = event.get("source")
    if isinstance(source, dict):
        value = source.get("userId")
        if isinstance(value, str) and value:
            return value
    return None


def timestamp_ms(event: dict[str, Any]) -> int:
    value = event.get("timestamp")
    return int(value) if isinstance(value, int | float) else 0


def without_reply_token(event: dict[str, Any]) -> dict[str, Any]:
    """The event as queued: linecap never replies, so the reply token (a short-lived credential
    to message the user) is not carried into the broker, logs or the dead-letter store."""
    return {key: value for key, value in event.items() if key != "replyToken"}
