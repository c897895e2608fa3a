"""Reading and checking the JSON bodies of the linking API, with a message per bad field.

The rules for a LINE user id, a mobile and a name are core.validation's, the CLI's too, so a
value the API accepts is one `linecap register` would accept.
"""

from __future__ import annotations

from typing import Any

from app.bodies import BadJson, parse_json, read_body
from config import LineChannel, Settings
from core.validation import (
    line_user_id_problem,
    mobile_problem,
    name_problem,
    normalise_mobile,
)


class BadInput(Exception):
    """A request the client must change: answered `status` with the field and the message."""

    def __init__(self, message: str, field: str | None = None, status: int = 400) -> None:
        super().__init__(message)
        self.message, self.field, self.status = message, field, status

    def to_json(self) -> dict[str, Any]:
        return {"message": self.message, **({"field": self.field} if self.field else {})}


# A link request is a handful of short fields, one level deep.
MAX_BODY_BYTES = 16 * 1024
MAX_JSON_DEPTH = 4
MAX_CUSTOMER_ID = 2**63 - 1  # Capillary's ids are 64-bit


def json_body() -> dict[str, Any]:
    """The body as a JSON object; 413 past MAX_BODY_BYTES, 400 for anything not an object."""
    try:
        body = parse_json(read_body(MAX_BODY_BYTES), MAX_JSON_DEPTH)
    except BadJson as exc:
        raise BadInput(f"{exc}; send a JSON object") from None
    if not isinstance(body, dict):
        raise BadInput("the body must be a JSON object")
    return body


def channel_of(body: dict[str, Any], settings: Settings) -> LineChannel:
    value = body.get("channel")
    if not isinstance(value, str) or not value:
        raise BadInput("channel is required (a configured LINE channel id)", "channel")
    channel = settings.channel(value)
    if channel is None:
        raise BadInput(f"channel {value} is not configured", "channel", status=404)
    return channel


def line_user_id_of(body: dict[str, Any]) -> str:
    value = body.get("line_user_id")
    problem = line_user_id_problem(value.strip()) if isinstance(value, str) else \
        "line_user_id is required"
    if problem:
        raise BadInput(problem, "line_user_id")
    return value.strip()


def mobile_of(body: dict[str, Any]) -> str:
    value = body.get("mobile")
    problem = mobile_problem(value.strip()) if isinstance(value, str) else "mobile is required"
    if problem:
        raise BadInput(problem, "mobile")
    return normalise_mobile(value)


def customer_id_of(body: dict[str, Any]) -> int:
    value = body.get("customer_id")
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 19:
        value = int(value)  # ASCII only: "²".isdigit() is True, and int("²") fails
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_CUSTOMER_ID:
        raise BadInput("customer_id must be a positive whole number (a Capillary customer id)",
                       "customer_id")
    return value


def name_of(body: dict[str, Any]) -> str | None:
    value = body.get("name")
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    problem = name_problem(value.strip()) if isinstance(value, str) else "name must be text"
    if problem:
        raise BadInput(problem, "name")
    return value.strip()


def link_target_of(body: dict[str, Any]) -> tuple[str | None, int | None]:
    """(mobile, None) or (None, customer_id): exactly one of the two must be given."""
    has_mobile, has_customer = body.get("mobile") is not None, body.get("customer_id") is not None
    if has_mobile == has_customer:
        raise BadInput("give exactly one of mobile or customer_id")
    return (mobile_of(body), None) if has_mobile else (None, customer_id_of(body))
