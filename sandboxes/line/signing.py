"""X-Line-Signature as LINE computes it, kept apart from core.line.signature on purpose.

The sandbox plays LINE: sharing the signing code with the server under test would let one bug
hide on both sides, so this is an independent implementation of the published definition.
"""

from __future__ import annotations

import base64
import hashlib
import hmac


def sign_body(body: bytes, channel_secret: str) -> str:
    """base64(HMAC-SHA256(channel secret, exact raw body bytes)) — the header value."""
    digest = hmac.new(channel_secret.encode("utf-8"), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def webhook_headers(body: bytes, channel_secret: str) -> dict[str, str]:
    """Headers LINE puts on a webhook POST (lower-case signature name, as LINE sends it)."""
    return {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": "LineBotWebhook/2.0",
        "x-line-signature": sign_body(body, channel_secret),
    }
