"""Builders for real-shaped LINE webhook events and bodies.

Pure functions so tests, the CLI ``send-event`` command and benchmarks build exactly what the
sandbox platform delivers: same fields, same id formats, same byte serialisation.
"""

from __future__ import annotations

import copy
import json
import re
import secrets
import time
from typing import Any

USER_ID_RE = re.compile(r"^U[0-9a-f]{32}$")
WEBHOOK_EVENT_ID_RE = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def now_ms() -> int:
    """Current time in epoch milliseconds, LINE's timestamp unit."""
    return int(time.time() * 1000)


def new_user_id() -> str:
    """A LINE user id: ``U`` + 32 lowercase hex characters."""
    return "U" + secrets.token_hex(16)


def is_user_id(value: object) -> bool:
    """True for a well-formed LINE user id."""
    return isinstance(value, str) and bool(USER_ID_RE.match(value))


def new_webhook_event_id(timestamp_ms: int | None = None) -> str:
    """A ULID: 26 Crockford base32 chars, 48-bit ms time then 80 random bits (uppercase)."""
    ts = now_ms() if timestamp_ms is None else timestamp_ms
    value = ((ts & ((1 << 48) - 1)) << 80) | secrets.randbits(80)
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def new_reply_token() -> str:
    """A reply token: 32 hex characters."""
    return secrets.token_hex(16)


def _base(
    kind: str,
    user_id: str | None,
    timestamp_ms: int | None,
    redelivery: bool,
    event_id: str | None,
    mode: str,
) -> dict[str, Any]:
    ts = now_ms() if timestamp_ms is None else int(timestamp_ms)
    event: dict[str, Any] = {"type": kind, "mode": mode, "timestamp": ts}
    if user_id is not None:
        event["source"] = {"type": "user", "userId": user_id}
    event["webhookEventId"] = event_id or new_webhook_event_id(ts)
    event["deliveryContext"] = {"isRedelivery": bool(redelivery)}
    return event


def make_follow_event(
    user_id: str,
    timestamp_ms: int | None = None,
    is_unblocked: bool = False,
    redelivery: bool = False,
    event_id: str | None = None,
    mode: str = "active",
) -> dict[str, Any]:
    """A follow (add friend / unblock) event; standby mode carries no replyToken, as on LINE."""
    event = _base("follow", user_id, timestamp_ms, redelivery, event_id, mode)
    if mode == "active":
        event["replyToken"] = new_reply_token()
    event["follow"] = {"isUnblocked": bool(is_unblocked)}
    return event


def make_unfollow_event(
    user_id: str,
    timestamp_ms: int | None = None,
    redelivery: bool = False,
    event_id: str | None = None,
    mode: str = "active",
) -> dict[str, Any]:
    """An unfollow (block) event: never has a replyToken."""
    return _base("unfollow", user_id, timestamp_ms, redelivery, event_id, mode)


def make_account_link_event(
    user_id: str | None,
    nonce: str,
    result: str,
    timestamp_ms: int | None = None,
    redelivery: bool = False,
    event_id: str | None = None,
) -> dict[str, Any]:
    """An accountLink event. A failed one has no ``source`` and no ``replyToken``, whatever
    ``user_id`` says: "The `source` property won't be included in the account link event if
    linking the account has failed", and the replyToken "won't be included if linking the
    account has failed" (Messaging API reference, "Account link event")."""
    if result not in ("ok", "failed"):
        raise ValueError("result must be 'ok' or 'failed'")
    ok = result == "ok"
    event = _base("accountLink", user_id if ok else None, timestamp_ms, redelivery, event_id,
                  "active")
    if ok:
        event["replyToken"] = new_reply_token()
    event["link"] = {"result": result, "nonce": nonce}
    return event


def as_redelivery(event: dict[str, Any]) -> dict[str, Any]:
    """A copy marked ``isRedelivery: true``; webhookEventId and timestamp stay the original."""
    copied = copy.deepcopy(event)
    context = copied.get("deliveryContext")
    copied["deliveryContext"] = {
        **(context if isinstance(context, dict) else {}),
        "isRedelivery": True,
    }
    return copied


def webhook_body(destination: str, events: list[dict[str, Any]]) -> bytes:
    """The exact bytes to POST and sign: compact JSON, non-ASCII escaped as LINE does."""
    payload = {"destination": destination, "events": events}
    return json.dumps(payload, ensure_ascii=True, separators=(",", ":")).encode("ascii")
