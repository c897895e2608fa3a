"""Capillary's two credential schemes: till Basic auth (md5 of the password) and OAuth tokens.

Tokens expire after ``token_ttl_seconds`` so clients must cache and refresh them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import threading
from collections.abc import Callable, Mapping

from .config import SandboxConfig

TOKEN_HEADER = "X-CAP-API-OAUTH-TOKEN"


def md5_hex(text: str) -> str:
    """The password form Capillary expects inside Basic auth."""
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def basic_header(username: str, password: str) -> str:
    """``Authorization`` value a correct client sends (for tests and tooling)."""
    raw = f"{username}:{md5_hex(password)}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class Authenticator:
    """Issues JWT-looking opaque tokens and checks either credential on each call."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._tokens: dict[str, float] = {}

    def issue(self, key: object, secret: object, config: SandboxConfig) -> str | None:
        """A new token for the right key/secret, else None."""
        if not (
            isinstance(key, str)
            and isinstance(secret, str)
            and hmac.compare_digest(key, config.oauth_key)
            and hmac.compare_digest(secret, config.oauth_secret)
        ):
            return None
        now = self._clock()
        header = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        claims = {"sub": key, "iat": int(now), "exp": int(now + config.token_ttl_seconds)}
        claims["jti"] = secrets.token_hex(8)
        payload = _b64url(json.dumps(claims).encode())
        signature = hmac.new(secret.encode(), f"{header}.{payload}".encode(), "sha256").digest()
        token = f"{header}.{payload}.{_b64url(signature)}"
        with self._lock:
            self._tokens = {t: exp for t, exp in self._tokens.items() if exp > now}
            self._tokens[token] = now + config.token_ttl_seconds
        return token

    def _token_ok(self, token: str) -> bool:
        with self._lock:
            expiry = self._tokens.get(token)
        return expiry is not None and expiry > self._clock()

    @staticmethod
    def _basic_ok(header: str, config: SandboxConfig) -> bool:
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic" or not encoded:
            return False
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False
        username, sep, password_md5 = decoded.partition(":")
        return bool(sep) and (
            hmac.compare_digest(username, config.username)
            and hmac.compare_digest(password_md5.lower(), md5_hex(config.password))
        )

    def check(self, headers: Mapping[str, str], config: SandboxConfig) -> bool:
        """True if the OAuth token (when sent, it alone decides) or Basic auth is valid."""
        token = headers.get(TOKEN_HEADER)
        if token is not None:
            return self._token_ok(token.strip())
        header = headers.get("Authorization")
        return header is not None and self._basic_ok(header, config)
