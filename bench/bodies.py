"""Signed LINE webhook bodies, built before the clock starts so the load tool only does I/O."""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence

from core.line.signature import sign
from sandboxes.line.events import make_follow_event, make_unfollow_event

CHANNEL_ID = "1650000001"
CHANNEL_SECRET = "0123456789abcdef0123456789abcdef"
ACCESS_TOKEN = "bench-access-token"
SOURCE_ACCOUNT_ID = "line-account-1"
SANDBOX_USER, SANDBOX_PASSWORD = "sandbox-till", "sandbox-password"


def channels_json() -> str:
    """LINE_CHANNELS for every process of the bench: one channel."""
    return json.dumps([{"name": "bench", "channel_id": CHANNEL_ID,
                        "channel_secret": CHANNEL_SECRET, "access_token": ACCESS_TOKEN,
                        "source_account_id": SOURCE_ACCOUNT_ID}])


def new_user_id() -> str:
    return "U" + secrets.token_hex(16)


def line_event(user_id: str, kind: str = "follow", timestamp: int | None = None) -> dict:
    """One follow/unfollow event shaped as LINE sends it, with a fresh webhookEventId."""
    if kind == "follow":
        return make_follow_event(user_id, timestamp_ms=timestamp)
    return make_unfollow_event(user_id, timestamp_ms=timestamp)


def signed_request(events: list[dict], secret: str = CHANNEL_SECRET) -> tuple[bytes, str]:
    """(body, X-Line-Signature) for one webhook delivery."""
    body = json.dumps({"destination": "U" + "0" * 32, "events": events},
                      separators=(",", ":")).encode()
    return body, sign(body, secret)


def body_pool(count: int, events_per_request: int,
              users: Sequence[str] | None = None) -> list[tuple[bytes, str]]:
    """`count` distinct signed bodies; users cycle through `users` when given, else random."""
    pool = []
    for i in range(count):
        events = []
        for j in range(events_per_request):
            user = users[(i * events_per_request + j) % len(users)] if users else new_user_id()
            events.append(line_event(user))
        pool.append(signed_request(events))
    return pool
