"""A request to link one LINE user to a Capillary customer, as it travels through Celery.

Built by the server-to-server API and by the accountLink handler; `to_event()` is the task's
`event` kwarg (and the dead letter's), so a replay sends it back unchanged. The link id
depends only on who is linked to whom, so the same request sent twice is recognised.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from core.errors import InvalidInputError
from core.line import events
from core.validation import is_line_user_id

LINK_EVENT_TYPE = "link"
_LINK_ID_NAMESPACE = uuid.UUID("0f4c2a5e-7d3b-4c61-9e2a-1b8d5f6a7c90")


@dataclass(frozen=True)
class LinkRequest:
    """Attach `line_user_id` to the customer holding `mobile` (or to `customer_id`)."""

    line_user_id: str
    mobile: str | None = None
    customer_id: int | None = None
    name: str | None = None
    nonce: str | None = None  # set when the link came through LINE's account-link flow

    def link_id(self, channel_id: str) -> str:
        target = f"mobile:{self.mobile}" if self.mobile else f"customer:{self.customer_id}"
        key = f"{channel_id}|{self.line_user_id}|{target}"
        # One unbroken hex run, so the log formatter's mobile masking never eats part of it.
        return f"link-{uuid.uuid5(_LINK_ID_NAMESPACE, key).hex}"

    def to_event(self) -> dict[str, Any]:
        details = {"mobile": self.mobile, "customerId": self.customer_id, "name": self.name,
                   "nonce": self.nonce}
        return {"type": LINK_EVENT_TYPE,
                "source": {"type": "user", "userId": self.line_user_id},
                "link": {k: v for k, v in details.items() if v is not None}}

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> LinkRequest:
        """Read a task payload back; anything malformed is permanent (a dead letter)."""
        details = event.get("link") if isinstance(event, dict) else None
        user_id = events.user_id(event) if isinstance(event, dict) else None
        if not isinstance(details, dict) or not is_line_user_id(user_id):
            raise InvalidInputError("link payload needs source.userId and a link object")
        mobile, customer_id = details.get("mobile"), details.get("customerId")
        if not ((isinstance(mobile, str) and mobile.isdigit())
                ^ (isinstance(customer_id, int) and customer_id > 0)):
            raise InvalidInputError("link payload needs exactly one of mobile or customerId")
        return cls(user_id, mobile or None, customer_id or None,
                   _text(details.get("name")), _text(details.get("nonce")))


def link_letter_id(channel_id: str, event: dict[str, Any]) -> str:
    """The link id of a payload, or a digest of it when it is too malformed to read."""
    try:
        return LinkRequest.from_event(event).link_id(channel_id)
    except InvalidInputError:
        return "link-" + events.event_id(event)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
