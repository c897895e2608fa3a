"""Follow and unfollow events shaped as LINE sends them, for the commands that make their own:
`linecap send-event` (the LINE console, locally), `backfill-followers` and the banner of
`linecap up`.

The sandboxes keep their own builders on purpose: a stand-in for LINE that shared these would
repeat any mistake in them instead of catching it.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# Any bot user id will do: linecap does not read `destination`.
DESTINATION = "U" + "0" * 32


def new_webhook_event_id(timestamp_ms: int) -> str:
    """A ULID, as LINE's webhookEventIds are: 48 bits of milliseconds, then 80 random bits."""
    value = ((timestamp_ms & ((1 << 48) - 1)) << 80) | secrets.randbits(80)
    return "".join(_CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))


def user_event(kind: str, user_id: str, timestamp_ms: int | None = None,
               event_id: str | None = None, redelivery: bool = False) -> dict[str, Any]:
    """A `follow` or `unfollow` from a user, without the replyToken nobody here could use."""
    if kind not in ("follow", "unfollow"):
        raise ValueError("kind must be follow or unfollow")
    timestamp = int(time.time() * 1000) if timestamp_ms is None else int(timestamp_ms)
    event: dict[str, Any] = {
        "type": kind,
        "mode": "active",
        "timestamp": timestamp,
        "source": {"type": "user", "userId": user_id},
        "webhookEventId": event_id or new_webhook_event_id(timestamp),
        "deliveryContext": {"isRedelivery": redelivery},
    }
    if kind == "follow":
        event["follow"] = {"isUnblocked": False}
    return event


def webhook_body(events: list[dict[str, Any]], destination: str = DESTINATION) -> bytes:
    """The exact bytes to sign and POST: compact JSON, non-ASCII escaped as LINE does."""
    payload = {"destination": destination, "events": events}
    return json.dumps(payload, ensure_ascii=True, separators=(",", ":")).encode("ascii")
