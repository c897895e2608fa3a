"""LINE's X-Line-Signature: base64(HMAC-SHA256(channel secret, raw request body))."""

from __future__ import annotations

import base64
import hashlib
import hmac


def sign(body: bytes, channel_secret: str) -> str:
    digest = hmac.new(channel_secret.encode(), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def is_valid(body: bytes, signature: str | None, channel_secret: str) -> bool:
    """Checked on the raw bytes, in constant time, before anything parses the body."""
    if not signature:
        return False
    return hmac.compare_digest(sign(body, channel_secret).encode(), signature.strip().encode())
