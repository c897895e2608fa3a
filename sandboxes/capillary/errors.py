"""Capillary-style error envelopes.

Capillary's HTTP status is not a reliable signal (a 400 or even a 200 can carry ``errors``),
so the sandbox always puts the real meaning in the envelope's codes, as Capillary does.
"""

from __future__ import annotations

from typing import Any

INVALID_INPUT = 1001
INVALID_IDENTIFIER = 1004
ALREADY_REGISTERED = 1014
IDENTIFIER_TAKEN = 1033
INVALID_SOURCE = 1101
INVALID_SOURCE_ACCOUNT = 8011
NOT_FOUND = 8015
ACCOUNT_ID_MISSING = 8045
SAME_CUSTOMER_OTHER_SOURCE = 8050
MERGED_WARNING = 8051
NOT_FOUND_IN_SOURCE = 8065


class ApiError(Exception):
    """A Capillary error code; ``http_status=None`` means "use the configured envelope status"."""

    def __init__(self, code: int, message: str, http_status: int | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.http_status = http_status


def invalid_input(detail: str) -> ApiError:
    """Malformed request: always HTTP 400, like Capillary's validation layer."""
    return ApiError(INVALID_INPUT, f"Invalid input: {detail}", 400)


def invalid_identifier(detail: str) -> ApiError:
    """Identifier of unknown type or malformed value: HTTP 400."""
    return ApiError(INVALID_IDENTIFIER, f"Invalid identifier: {detail}", 400)


def invalid_source(source: object) -> ApiError:
    """Unknown source name: HTTP 400."""
    return ApiError(INVALID_SOURCE, f"Invalid source: {source}", 400)


def error_item(code: int, message: str) -> dict[str, Any]:
    """One entry of an ``errors`` array."""
    return {"status": False, "code": code, "message": message}


def warning_item(code: int, message: str) -> dict[str, Any]:
    """One entry of a ``warnings`` array (``status: true`` — the call still succeeded)."""
    return {"status": True, "code": code, "message": message}


def error_body(code: int, message: str, *, with_warnings: bool = False) -> dict[str, Any]:
    """The error envelope; transport-level errors (401/429/5xx) carry no ``warnings``."""
    body: dict[str, Any] = {"errors": [error_item(code, message)]}
    if with_warnings:
        body["warnings"] = []
    return body
