"""What reached the Capillary sandbox for one LINE user: its calls, registrations, subscription
writes, and whether an event's effects happened exactly once."""

from __future__ import annotations

import json
import time

from tests.helpers import SOURCE_ACCOUNT_ID
from tests.integration.stack import Stack, dump, wait_until


def calls_about(stack: Stack, user: str, customer_id: int | None = None) -> list[dict]:
    """Sandbox calls that concern one LINE user (by body or query) or their customer id."""
    found = []
    for call in stack.calls():
        text = json.dumps(call.get("body")) + json.dumps(call.get("query"))
        if user in text or (customer_id and f"/v2/customers/{customer_id}/" in call["path"]):
            found.append(call)
    return found


def registrations(calls: list[dict]) -> list[str]:
    return [c["source"] for c in calls
            if c["method"] == "POST" and c["path"] == "/v2/customers" and c["status"] == 200]


def subscription_posts(calls: list[dict]) -> list[dict]:
    return [c for c in calls if c["method"] == "POST" and c["path"].endswith("/subscriptions")
            and c["status"] == 200]


def line_status(stack: Stack, user: str) -> str | None:
    found = stack.customers_with(user)
    return stack.line_subscription(found[0], SOURCE_ACCOUNT_ID) if found else None


def settle(stack: Stack, user: str, status: str, timeout: float = 30) -> list[dict]:
    wait_until(lambda: line_status(stack, user) == status, timeout, message=f"{status}")
    time.sleep(1.5)  # let any stray duplicate run, so a double apply would show
    return stack.customers_with(user)


def followed_once(stack: Stack, user: str) -> dict:
    """Assert one follow's effects happened exactly once: one customer with both profiles,
    INSTORE and LINE registered once each, one subscription write, opted in. Returns the
    user's subscription write (its `ts` is when the event was applied)."""
    customers = stack.customers_with(user)
    assert len(customers) == 1, dump(customers)
    assert sorted(p["source"] for p in customers[0]["profiles"]) == ["INSTORE", "LINE"]
    assert stack.line_subscription(customers[0], SOURCE_ACCOUNT_ID) == "OPTIN"
    calls = calls_about(stack, user, customers[0]["id"])
    assert registrations(calls) == ["INSTORE", "LINE"], dump(calls)
    [write] = subscription_posts(calls)
    return write


def extra_effects(stack: Stack, user: str) -> int:
    """How many effects beyond one customer, two registrations and one subscription write."""
    customers = stack.customers_with(user)
    calls = calls_about(stack, user, customers[0]["id"] if customers else None)
    return (max(len(customers) - 1, 0) + max(len(registrations(calls)) - 2, 0)
            + max(len(subscription_posts(calls)) - 1, 0))
