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

from core.capillary import codes as capillary_codes
from core.capillary.auth import CapillaryAuthenticator
from core.errors import (
    AlreadyRegisteredError,
    BatchTooLargeError,
    ConfigurationError,
    CredentialsError,
    IdentityConflictError,
    InvalidInputError,
    LinecapError,
    MergedAwayError,
    NotFoundError,
    OrgRulesError,
    TransientError,
)
from core.store.rate_budget import SharedRateLimiter

QUICK_RETRY_MAX_WAIT = 1.0

ResponseObserver = Callable[[str, str, float], None]

# Envelope codes → the error class linecap raises, first match wins.
_CLASS_BY_CODES: tuple[tuple[frozenset[int], type[LinecapError]], ...] = (
    (capillary_codes.NOT_FOUND, NotFoundError),
    (capillary_codes.MERGED_AWAY, MergedAwayError),
    (capillary_codes.ALREADY_IN_SOURCE, AlreadyRegisteredError),
    (capillary_codes.IDENTITY_CONFLICT, IdentityConflictError),
    (capillary_codes.CONFIGURATION, ConfigurationError),
    (capillary_codes.ORG_RULES, OrgRulesError),
    (capillary_codes.BATCH_TOO_LARGE, BatchTooLargeError),
)


def error_codes(body: Any) -> list[int]:
    """The integer codes of the envelope's `errors`, ignoring anything malformed."""
    return _codes(body, "errors")


def warning_codes(body: Any) -> list[int]:
    return _codes(body, "warnings")


def error_messages(body: Any) -> list[str]:
    if not isinstance(body, dict) or not isinstance(body.get("errors"), list):
        return []
    return [str(item.get("message", "")) for item in body["errors"] if isinstance(item, dict)]


def _codes(body: Any, key: str) -> list[int]:
    if not isinstance(body, dict) or not isinstance(body.get(key), list):
        return []
    found = []
    for item in body[key]:
        if isinstance(item, dict):
            try:
                found.append(int(item.get("code")))
            except (TypeError, ValueError):
                continue
    return found


def raise_for_envelope(endpoint: str, status: int, body: Any,
                       retry_after: float | None = None) -> None:
    """Turn one Capillary answer into linecap's error classes; return quietly on success.

    The envelope's codes decide before the HTTP status: Capillary answers business errors
    under 400, 403 or 500 alike (index.html.md § HTTP Status Codes).
    """
    codes = error_codes(body)
    label = f"{endpoint}: HTTP {status}" + (f", codes {codes}" if codes else "")
    error = _error_for_codes(codes, label)
    if error is not None:
        raise error
    if status in capillary_codes.TRANSIENT_STATUSES or status >= 500:
        if status >= 500 and isinstance(body, dict) and body.get("createdId") is not None:
            return  # a success with warnings under 500 (one published 8050 sample)
        raise TransientError(f"{label} (try again later)", retry_after=retry_after)
    if status == 401:
        raise CredentialsError(f"{label} (credentials refused)")
    if status == 403:
        raise _forbidden(label, " ".join(error_messages(body)))
    if codes or status >= 400:
        raise InvalidInputError(label)


def api_group(method: str, endpoint: str) -> str:
    """The budget group of a call (core.store.rate_budget.API_GROUPS), by its path template."""
    if endpoint.endswith("/changeIdentifier"):
        return "identifiers"
    if endpoint.endswith("/subscriptions"):
        return "subscriptions"
    if endpoint == "/v2/customers/bulk":
        return "bulk"
    if method == "POST" and endpoint == "/v2/customers":
        return "add"
    return "lookup"


def _error_for_codes(codes: list[int], label: str) -> LinecapError | None:
    for known, cls in _CLASS_BY_CODES:
        matched = tuple(c for c in codes if c in known)
        if matched:
            error = cls(label)
            error.codes = matched
            return error
    return None


def _forbidden(label: str, message: str) -> LinecapError:
    """403 is not always bad credentials (index.html.md: "V2 is not enabled for the org.
    Mandatory field is missing. Field {x} is mandatory.")."""
    lowered = message.lower()
    if "mandatory" in lowered:
        return InvalidInputError(f"{label} ({message.strip()})")
    if "v2" in lowered and "enabled" in lowered:
        return ConfigurationError(f"{label} (V2 APIs are not enabled for this org; ask "
                                  "Capillary support to enable them)")
    return CredentialsError(f"{label} (credentials refused or not allowed this API)")


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
             json_body: Any = None, per_item: bool = False) -> Any:
        """`endpoint` is the path template used in logs, errors and metrics (no ids in it).

        `per_item`: a batch call, answered by one result per item whatever the status (200,
        201 some failed, 500 all failed): a JSON array is returned as it is.
        """
        retrying = Retrying(
            stop=stop_after_attempt(self._quick_attempts),
            wait=wait_random_exponential(multiplier=0.2, max=QUICK_RETRY_MAX_WAIT),
            retry=retry_if_exception(_quick_retry_worthy),
            reraise=True,
        )
        return retrying(self._call_once, method, path, endpoint, params, json_body, per_item)

    def _call_once(self, method: str, path: str, endpoint: str, params: dict | None,
                   json_body: Any, per_item: bool) -> Any:
        refreshed = False
        while True:
            status, body, retry_after = self._send(method, path, endpoint, params, json_body)
            if status == 401 and self._auth.can_refresh and not refreshed:
                self._auth.invalidate()
                refreshed = True
                continue
            if per_item and isinstance(body, list) and status in (200, 201, 500):
                return body
            raise_for_envelope(f"{method} {endpoint}", status, body, retry_after)
            return body if isinstance(body, dict) else {}

    def _send(self, method: str, path: str, endpoint: str, params: dict | None,
              json_body: Any) -> tuple[int, Any, float | None]:
        if self._limiter is not None:
            self._limiter.acquire(api_group(method, endpoint))
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
