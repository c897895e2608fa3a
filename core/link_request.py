"""A request to link one LINE user to a Capillary customer, as it travels through Celery.

Built by the server-to-server API and by the accountLink handler; `to_event()` is the task's
`event` kwarg (and the dead letter's), so a replay sends it back unchanged. The link id
depends only on who is linked to whom, so the same request sent twice is recognised; it is
keyed (core.keyed_ids), so it does not give the mobile away in logs and Flower.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from config import LineChannel
from core.errors import InvalidInputError
from core.keyed_ids import keyed_id
from core.line import events
from core.validation import is_line_user_id, is_mobile

LINK_EVENT_TYPE = "link"
MAX_CUSTOMER_ID = 2**63 - 1


@dataclass(frozen=True)
class LinkRequest:
    """Attach `line_user_id` to the customer holding `mobile` (or to `customer_id`)."""

    line_user_id: str
    mobile: str | None = None
    customer_id: int | None = None
    name: str | None = None
    session: str | None = None  # the account-link session, when it came through LINE's flow

    def link_id(self, channel: LineChannel) -> str:
        target = f"mobile:{self.mobile}" if self.mobile else f"customer:{self.customer_id}"
        return keyed_id("link", channel, self.line_user_id, target)

    def to_event(self) -> dict[str, Any]:
        details = {"mobile": self.mobile, "customerId": self.customer_id, "name": self.name,
                   "session": self.session}
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
        valid_mobile = is_mobile(mobile) and not str(mobile).startswith("+")
        valid_customer = (isinstance(customer_id, int) and not isinstance(customer_id, bool)
                          and 0 < customer_id <= MAX_CUSTOMER_ID)
        if not valid_mobile ^ valid_customer:
            raise InvalidInputError("link payload needs exactly one of mobile (8-15 digits 0-9) "
                                    "or customerId")
        return cls(user_id, mobile if valid_mobile else None,
                   customer_id if valid_customer else None,
                   _text(details.get("name")), _text(details.get("session")))


def link_letter_id(channel: LineChannel | None, event: dict[str, Any]) -> str:
    """The link id of a payload, or a digest of it when it is too malformed to read (or its
    channel is no longer configured)."""
    try:
        if channel is not None:
            return LinkRequest.from_event(event).link_id(channel)
    except InvalidInputError:
        pass
    return "link-" + events.event_id(event if isinstance(event, dict) else {})


def _text(value: Any) -> str | None:
    return value[:100] if isinstance(value, str) and value else None
