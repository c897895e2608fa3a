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


def verify_any(body: bytes, signature: str | None, secrets: tuple[str, ...]) -> bool:
    return matching_secret(body, signature, secrets) is not None


def matching_secret(body: bytes, signature: str | None, secrets: tuple[str, ...]) -> int | None:
    """The index of the secret the body was signed with (0 = current, 1 = previous during a
    rotation), or None. Every secret is tried, so the time taken does not say which matched."""
    found = [index for index, secret in enumerate(secrets) if is_valid(body, signature, secret)]
    return found[0] if found else None
