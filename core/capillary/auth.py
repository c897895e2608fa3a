"""Capillary credentials as request headers: Basic (md5 of the till password) or OAuth tokens.

OAuth tokens are short-lived (the lifetime is set per client): cached per process, refreshed
a little before expiry, and refreshed once more when Capillary answers 401 anyway.
"""

from __future__ import annotations

import base64
import hashlib
import threading
import time

import requests

from config import CapillaryAuth
from core.errors import CredentialsError, TransientError

_REFRESH_MARGIN_SECONDS = 30


class CapillaryAuthenticator:
    def __init__(self, base_url: str, auth: CapillaryAuth, session: requests.Session,
                 timeout: float) -> None:
        self._base_url = base_url
        self._auth = auth
        self._session = session
        self._timeout = timeout
        self._token: str | None = None
        self._token_expires_at = 0.0
        self._lock = threading.Lock()

    @property
    def can_refresh(self) -> bool:
        return self._auth.uses_oauth

    def headers(self) -> dict[str, str]:
        if not self._auth.uses_oauth:
            digest = hashlib.md5((self._auth.password or "").encode()).hexdigest()
            raw = f"{self._auth.username}:{digest}".encode()
            return {"Authorization": "Basic " + base64.b64encode(raw).decode()}
        with self._lock:
            if self._token is None or time.monotonic() >= self._token_expires_at:
                self._fetch_token()
            return {"X-CAP-API-OAUTH-TOKEN": self._token or ""}

    def invalidate(self) -> None:
        with self._lock:
            self._token = None

    def _fetch_token(self) -> None:
        url = f"{self._base_url}/v3/oauth/token/generate"
        body = {"key": self._auth.oauth_key, "secret": self._auth.oauth_secret}
        try:
            response = self._session.post(url, json=body, timeout=self._timeout)
        except requests.RequestException as exc:
            raise TransientError(f"OAuth token request failed: {type(exc).__name__}") from None
        if response.status_code in (401, 403):
            raise CredentialsError("Capillary refused the OAuth key/secret (HTTP "
                                   f"{response.status_code})")
        if response.status_code == 429 or response.status_code >= 500:
            raise TransientError(f"OAuth token request got HTTP {response.status_code}")
        try:
            data = response.json()["data"]
            token, ttl = data["accessToken"], float(data.get("ttlSeconds", 300))
        except (ValueError, KeyError, TypeError):
            raise CredentialsError("OAuth token response had no data.accessToken") from None
        self._token = token
        self._token_expires_at = time.monotonic() + max(ttl - _REFRESH_MARGIN_SECONDS, ttl / 2)
