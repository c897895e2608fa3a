"""LINE-shaped JSON error bodies and the request-scoped helpers both blueprints use."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, jsonify, request

from .platform import Platform
from .state import SandboxState

EXTENSION_KEY = "line_sandbox"
AUTH_FAILED = (
    "Authentication failed. Confirm that the access token in the authorization header is valid."
)
RATE_LIMITED = "The API rate limit has been exceeded. Try again later."


def error(
    status: int,
    message: str,
    details: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """``{"message": ..., "details": [...]}`` with the given status, as LINE answers errors."""
    body: dict[str, Any] = {"message": message}
    if details:
        body["details"] = details
    response = jsonify(body)
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def state() -> SandboxState:
    """The sandbox state of the running app."""
    return current_app.extensions[EXTENSION_KEY]["state"]


def platform() -> Platform:
    """The platform (webhook sender) of the running app."""
    return current_app.extensions[EXTENSION_KEY]["platform"]


def json_object() -> dict[str, Any] | None:
    """The request body as a JSON object; None when it is not one (or is empty/invalid)."""
    data = request.get_json(silent=True)
    return data if isinstance(data, dict) else None
