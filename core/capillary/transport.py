"""One Capillary HTTP call: budget, auth, timeout, quick retries, and reading the error envelope.

Capillary's HTTP status is not a reliable verdict (a 200 can carry `errors`, a 400 can mean
"not found"), so the envelope's codes decide, and the status only where there is no envelope.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable
from typing import Any

import requests
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from core.capillary.auth import CapillaryAuthenticator
from core.errors import (
    AlreadyRegisteredError,
    ConfigurationError,
    CredentialsError,
    InvalidInputError,
    NotFoundError,
    TransientError,
)
from core.store.rate_budget import SharedRateLimiter

NOT_FOUND_CODES = frozenset({8015, 8065, 1011, 1012, 816})
ALREADY_REGISTERED_CODES = frozenset({1014, 1032, 1033, 1016, 91007})
CONFIGURATION_CODES = frozenset({8011, 8045})
QUICK_RETRY_MAX_WAIT = 1.0

ResponseObserver = Callable[[str, str, float], None]


def error_codes(body: Any) -> list[int]:
    """The integer codes of the envelope's `errors`, ignoring anything malformed."""
    if not isinstance(body, dict) or not isinstance(body.get("errors"), list):
        return []
    codes = []
    for item in body["errors"]:
        if isinstance(item, dict):
            try:
                codes.append(int(item.get("code")))
            except (TypeError, ValueError):
                continue
    return codes


def warning_codes(body: Any) -> list[int]:
    if not isinstance(body, dict) or not isinstance(body.get("warnings"), list):
        return []
    return [int(w["code"]) for w in body["warnings"]
            if isinstance(w, dict) and str(w.get("code", "")).lstrip("-").isdigit()]


def raise_for_envelope(endpoint: str, status: int, body: Any,
                       retry_after: float | None = None) -> None:
    """Turn one Capillary answer into linecap's error classes; return quietly on success."""
    codes = error_codes(body)
    label = f"{endpoint}: HTTP {status}" + (f", codes {codes}" if codes else "")
    if status == 429:
        raise TransientError(f"{label} (rate limited)", retry_after=retry_after)
    if status >= 500:
        raise TransientError(label, retry_after=retry_after)
    if status in (401, 403):
        raise CredentialsError(f"{label} (credentials refused)")
    if codes:
        if any(c in NOT_FOUND_CODES for c in codes):
            raise NotFoundError(label)
        if any(c in ALREADY_REGISTERED_CODES for c in codes):
            raise AlreadyRegisteredError(label)
        if any(c in CONFIGURATION_CODES for c in codes):
            raise ConfigurationError(f"{label} (source account configuration)")
        raise InvalidInputError(label)
    if status >= 400:
        raise InvalidInputError(label)


def parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(parsed.timestamp() - time.time(), 0.0)


def _quick_retry_worthy(exc: BaseException) -> bool:
    return isinstance(exc, TransientError) and (exc.retry_after or 0) <= QUICK_RETRY_MAX_WAIT


class CapillaryTransport:
    """Send a request within the shared budget and give back the parsed JSON body."""

    def __init__(
        self, base_url: str, authenticator: CapillaryAuthenticator, session: requests.Session,
        limiter: SharedRateLimiter | None, timeout: float, quick_attempts: int = 3,
        observe: ResponseObserver | None = None,
    ) -> None:
        self.base_url = base_url
        self._auth = authenticator
        self._session = session
        self._limiter = limiter
        self._timeout = timeout
        self._quick_attempts = quick_attempts
        self._observe = observe

    def call(self, method: str, path: str, endpoint: str, params: dict | None = None,
             json_body: dict | None = None) -> dict[str, Any]:
        """`endpoint` is the path template used in logs, errors and metrics (no ids in it)."""
        retrying = Retrying(
            stop=stop_after_attempt(self._quick_attempts),
            wait=wait_random_exponential(multiplier=0.2, max=QUICK_RETRY_MAX_WAIT),
            retry=retry_if_exception(_quick_retry_worthy),
            reraise=True,
        )
        return retrying(self._call_once, method, path, endpoint, params, json_body)

    def _call_once(self, method: str, path: str, endpoint: str, params: dict | None,
                   json_body: dict | None) -> dict[str, Any]:
        refreshed = False
        while True:
            status, body, retry_after = self._send(method, path, endpoint, params, json_body)
            if status == 401 and self._auth.can_refresh and not refreshed:
                self._auth.invalidate()
                refreshed = True
                continue
            raise_for_envelope(f"{method} {endpoint}", status, body, retry_after)
            return body if isinstance(body, dict) else {}

    def _send(self, method: str, path: str, endpoint: str, params: dict | None,
              json_body: dict | None) -> tuple[int, Any, float | None]:
        if self._limiter is not None:
            self._limiter.acquire()
        headers = {"Accept": "application/json", **self._auth.headers()}
        started = time.perf_counter()
        try:
            response = self._session.request(
                method, self.base_url + path, params=params, json=json_body,
                headers=headers, timeout=self._timeout,
            )
        except requests.Timeout:
            self._observed(method, endpoint, "timeout", started)
            raise TransientError(f"{method} {endpoint}: timed out") from None
        except requests.RequestException as exc:
            self._observed(method, endpoint, "connection_error", started)
            raise TransientError(f"{method} {endpoint}: {type(exc).__name__}") from None
        self._observed(method, endpoint, str(response.status_code), started)
        try:
            body = response.json()
        except ValueError:
            body = None
        return response.status_code, body, parse_retry_after(response.headers.get("Retry-After"))

    def _observed(self, method: str, endpoint: str, status: str, started: float) -> None:
        if self._observe is not None:
            self._observe(f"{method} {endpoint}", status, time.perf_counter() - started)
