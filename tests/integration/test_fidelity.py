"""What real orgs do, on real processes: the Capillary sandbox as a strict model of its
documents (no lookups by LINE id, an org unit on subscription writes, documented merges),
registering LINE-only customers only where the org allows it."""

from __future__ import annotations

import json

import pytest
import requests

from core.store.connection import redis_client
from core.store.dead_letters import DeadLetterStore
from tests.helpers import CHANNEL_ID, SOURCE_ACCOUNT_ID, follow_event, new_user_id
from tests.integration.stack import Stack, database_url, wait_until

# Strict, except that LINE-only customers can be registered (what linking exists for).
LINE_ONLY_ALLOWED = json.dumps({"required_identifiers": [],
                                "non_loyalty_needs_mobile_or_email": False})
API_KEY = "fidelity-api-key-0123456789"


@pytest.fixture(scope="module")
def stack(redis_url, tmp_path_factory):
    with Stack(database_url(redis_url, 10), tmp_path_factory.mktemp("fidelity"),
               org=LINE_ONLY_ALLOWED, LINECAP_API_KEYS=API_KEY).running() as stack:
        yield stack


def add_member(stack: Stack, mobile: str) -> int:
    """A member registered in store (Member Care), before linecap knows of them."""
    return stack.capillary_api("POST", "/v2/customers", {
        "loyaltyInfo": {"loyaltyType": "non_loyalty"},
        "profiles": [{"source": "INSTORE",
                      "identifiers": [{"type": "mobile", "value": mobile}]}]}).json()["createdId"]


def line_status(stack: Stack, customer: dict) -> str | None:
    return stack.line_subscription(customer, SOURCE_ACCOUNT_ID)


def only_customer(stack: Stack, user: str) -> dict | None:
    found = stack.customers_with(user)
    live = [c for c in found if c.get("mergedInto") is None]
    return live[0] if len(live) == 1 else None


def settled(stack: Stack, user: str, status: str) -> dict | None:
    customer = only_customer(stack, user)
    if customer and line_status(stack, customer) == status and {
            p["source"] for p in customer["profiles"]} == {"INSTORE", "LINE"}:
        return customer
    return None


def outcome(stack: Stack, event: dict) -> str | None:
    """How the worker finished the event (its dedup record), once it has."""
    return redis_client(stack.redis_url).get(f"linecap:event:{event['webhookEventId']}")


def subscription_writes(stack: Stack) -> int:
    return sum(1 for c in stack.calls()
               if c["method"] == "POST" and c["path"].endswith("/subscriptions"))


def test_an_unfollow_from_an_unknown_user_registers_and_opts_out(stack):
    user = new_user_id()
    assert stack.send([follow_event(user, kind="unfollow")]).status_code == 200
    customer = wait_until(lambda: settled(stack, user, "OPTOUT"), message="OPTOUT customer")
    assert len(stack.customers_with(user)) == 1 and customer


@pytest.mark.parametrize("order", ["follow first", "unfollow first"])
def test_follow_and_unfollow_end_the_same_in_either_order(stack, order):
    user = new_user_id()
    follow = follow_event(user, timestamp=1_700_000_000_000)
    unfollow = follow_event(user, timestamp=1_700_000_001_000, kind="unfollow")
    first, second = (follow, unfollow) if order == "follow first" else (unfollow, follow)
    assert stack.send([first]).status_code == 200
    wait_until(lambda: only_customer(stack, user), message="first event applied")
    assert stack.send([second]).status_code == 200
    finished = wait_until(lambda: outcome(stack, second), message="second event finished")
    assert finished == ("applied" if order == "follow first" else "stale")
    assert settled(stack, user, "OPTOUT"), stack.customers_with(user)


def test_a_follow_from_an_opted_in_customer_makes_no_subscription_write(stack):
    user = new_user_id()
    stack.send([follow_event(user, timestamp=1_700_000_000_000)])
    wait_until(lambda: settled(stack, user, "OPTIN"), message="opted in")
    redis_client(stack.redis_url).delete(f"linecap:customer:{CHANNEL_ID}:{user}")
    before, calls_before = subscription_writes(stack), len(stack.calls())
    again = follow_event(user, timestamp=1_700_000_002_000)  # a re-follow, say
    stack.send([again])
    assert wait_until(lambda: outcome(stack, again), message="re-follow finished") == "applied"
    assert any(c["method"] == "GET" and "lookup" in c["path"]
               for c in stack.calls()[calls_before:]), "the status came from a lookup"
    assert subscription_writes(stack) == before


def test_a_customer_merged_away_mid_flight_is_resolved_again(stack):
    """A person merges the LINE-only customer into a member in Member Care while linecap still
    caches the old id: the next event meets 8069, resolves again and writes to the member."""
    user, mobile = new_user_id(), "66811112222"
    stack.send([follow_event(user, timestamp=1_700_000_000_000)])
    line_only = wait_until(lambda: settled(stack, user, "OPTIN"), message="LINE-only")["id"]
    member = add_member(stack, mobile)
    merged = stack.capillary_api(
        "POST", f"/v2/customers/{line_only}/changeIdentifier",
        {"add": [{"type": "mobile", "value": mobile}]},
        params={"source": "LINE", "accountId": SOURCE_ACCOUNT_ID})
    assert merged.json()["warnings"][0]["code"] == 8051
    stack.send([follow_event(user, timestamp=1_700_000_001_000, kind="unfollow")])
    survivor = wait_until(lambda: settled(stack, user, "OPTOUT"), message="survivor OPTOUT")
    assert survivor["id"] == member
    assert any(c["status"] == 400 and c["path"] == f"/v2/customers/{line_only}/subscriptions"
               for c in stack.calls()), "the write to the merged id met 8069 first"
    assert DeadLetterStore(redis_client(stack.redis_url)).count() == 0


def test_linking_a_line_only_customer_to_a_member_folds_it_in_the_documented_way(stack):
    user, mobile = new_user_id(), "66822223333"
    stack.send([follow_event(user, timestamp=1_700_000_000_000)])
    line_only = wait_until(lambda: settled(stack, user, "OPTIN"), message="LINE-only")["id"]
    member = add_member(stack, mobile)
    response = requests.post(f"{stack.web_url}/api/v1/links", json={
        "channel": CHANNEL_ID, "line_user_id": user, "mobile": mobile},
        headers={"Authorization": f"Bearer {API_KEY}"}, timeout=10)
    assert response.status_code == 202, response.text
    linked = wait_until(lambda: settled(stack, user, "OPTIN")
                        if (only_customer(stack, user) or {}).get("id") == member else None,
                        message="one customer: the member")
    assert {i["value"] for p in linked["profiles"] for i in p["identifiers"]} >= {user, mobile}
    victim = next(c for c in stack.customers() if c["id"] == line_only)
    assert victim["mergedInto"] == member, "the LINE-only customer is the victim"
    change = [(c["path"], c["query"]["source"]) for c in stack.calls()
              if c["path"] in (f"/v2/customers/{line_only}/changeIdentifier",
                               f"/v2/customers/{member}/changeIdentifier")]
    assert change == [(f"/v2/customers/{line_only}/changeIdentifier", "LINE")], \
        "the LINE-only customer is changed (and so merged), never the member"


def test_an_org_that_needs_a_mobile_gets_an_actionable_dead_letter(fresh_stack):
    stack = fresh_stack(org="strict")
    stack.start_web()
    stack.start_worker()
    user = new_user_id()
    event = follow_event(user)
    assert stack.send([event]).status_code == 200
    letters = DeadLetterStore(redis_client(stack.redis_url))
    letter = wait_until(lambda: letters.get(event["webhookEventId"]), message="dead letter")
    assert letter.error_class == "org_rules"
    assert "LINECAP_UNKNOWN_USER_STRATEGY=park" in letter.error
    assert stack.customers() == []
    worker_log = stack.procs[-1].log()
    assert "LINECAP_UNKNOWN_USER_STRATEGY=park" in worker_log
