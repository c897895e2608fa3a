"""A signed follow/unfollow reaches Capillary through Celery, on real parts, over HTTP."""

from __future__ import annotations

from core.store.connection import redis_client
from core.store.state import StateStore
from tests.helpers import SOURCE_ACCOUNT_ID, follow_event, new_user_id
from tests.integration.stack import dump, wait_until


def profile(customer: dict, source: str) -> dict | None:
    return next((p for p in customer["profiles"] if p["source"] == source), None)


def test_follow_of_new_user_registers_instore_then_line_and_opts_in(stack):
    user = new_user_id()
    before = len(stack.calls())
    assert stack.send([follow_event(user)]).status_code == 200

    def opted_in():
        found = stack.customers_with(user)
        return found if found and stack.line_subscription(found[0], SOURCE_ACCOUNT_ID) == "OPTIN" \
            else None

    customers = wait_until(opted_in, message="customer opted in")
    assert len(customers) == 1, dump(customers)
    customer = customers[0]
    line = profile(customer, "LINE")
    assert line["accountId"] == SOURCE_ACCOUNT_ID
    assert profile(customer, "INSTORE") is not None
    registrations = [c for c in stack.calls()[before:]
                     if c["method"] == "POST" and c["path"] == "/v2/customers"]
    assert [c["source"] for c in registrations] == ["INSTORE", "LINE"]


def test_unfollow_opts_out(stack):
    user = new_user_id()
    follow = follow_event(user, timestamp=1_700_000_000_000)
    stack.send([follow])
    wait_until(lambda: stack.customers_with(user), message="registered")
    stack.send([follow_event(user, timestamp=1_700_000_000_500, kind="unfollow")])

    def opted_out():
        found = stack.customers_with(user)
        return stack.line_subscription(found[0], SOURCE_ACCOUNT_ID) == "OPTOUT"

    wait_until(opted_out, message="OPTOUT")
    assert len(stack.customers_with(user)) == 1


def test_follow_of_instore_customer_attaches_line_to_same_customer(stack):
    """The customer exists as INSTORE only (by the externalId linecap derives)."""
    user = new_user_id()
    seeded = stack.capillary_api("POST", "/v2/customers", {
        "loyaltyInfo": {"loyaltyType": "non_loyalty"},
        "profiles": [{"source": "INSTORE", "firstName": "Existing",
                      "identifiers": [{"type": "externalId", "value": f"line_{user}"}]}]})
    assert seeded.status_code == 200, seeded.text
    customer_id = seeded.json()["createdId"]
    stack.send([follow_event(user)])

    def attached():
        found = stack.customers_with(user)
        return found if found and profile(found[0], "LINE") and \
            stack.line_subscription(found[0], SOURCE_ACCOUNT_ID) == "OPTIN" else None

    customers = wait_until(attached, message="LINE profile attached")
    assert [c["id"] for c in customers] == [customer_id]
    assert profile(customers[0], "INSTORE")["firstName"] == "Existing"


def test_follow_with_known_mobile_attaches_to_existing_mobile_customer(stack):
    user, mobile = new_user_id(), "66" + new_user_id()[1:10].translate(str.maketrans(
        "abcdef", "123456"))
    seeded = stack.capillary_api("POST", "/v2/customers", {
        "loyaltyInfo": {"loyaltyType": "non_loyalty"},
        "profiles": [{"source": "INSTORE", "identifiers": [{"type": "mobile", "value": mobile}]}]})
    assert seeded.status_code == 200, seeded.text
    StateStore(redis_client(stack.redis_url), 60, 60, 60).remember_identity(user, mobile)
    stack.send([follow_event(user)])
    customers = wait_until(lambda: [c for c in stack.customers_with(user)
                                    if profile(c, "LINE")], message="attached")
    assert customers[0]["id"] == seeded.json()["createdId"]
    assert len(stack.customers_with(mobile)) == 1


def test_bad_signature_is_refused_and_nothing_reaches_capillary(stack):
    user = new_user_id()
    response = stack.send([follow_event(user)], secret="not-the-secret")
    assert response.status_code == 401
    import time

    time.sleep(1.0)
    assert stack.customers_with(user) == []


def test_malformed_body_is_400(stack):
    import requests

    from core.line.signature import sign
    from tests.helpers import CHANNEL_ID, CHANNEL_SECRET

    raw = b'{"destination":"U0","events":"nope"}'
    response = requests.post(f"{stack.web_url}/webhooks/line/{CHANNEL_ID}", data=raw,
                             headers={"x-line-signature": sign(raw, CHANNEL_SECRET)}, timeout=5)
    assert response.status_code == 400


def test_unknown_event_type_is_acknowledged_and_does_not_call_capillary(stack):
    before = len(stack.calls())
    event = {"type": "beaconV9", "webhookEventId": "01UNKNOWNTYPE0000000000000", "timestamp": 1,
             "mode": "active", "source": {"type": "user", "userId": new_user_id()}}
    assert stack.send([event]).status_code == 200
    import time

    time.sleep(0.5)
    assert stack.calls()[before:] == []


def test_a_multi_event_request_is_fanned_out_and_each_event_applied_once(fresh_stack):
    """Five follows in one request: the receiver queues one message, a worker fans it out,
    and each event is applied under its own webhookEventId. The worker is started with
    `-Q line-events` only, as a Procfile written before the batches queue would: it must
    still consume the fan-out queue."""
    stack = fresh_stack()
    stack.start_web()
    worker = stack.start_worker(concurrency=2, queues="line-events")
    users = [new_user_id() for _ in range(5)]
    batch = [follow_event(user) for user in users]
    assert stack.send(batch).status_code == 200

    state = StateStore(redis_client(stack.redis_url), 60, 60, 60)
    wait_until(lambda: all(state.outcome_of(e["webhookEventId"]) == "applied" for e in batch),
               30, message="all five applied")
    for user in users:
        customers = stack.customers_with(user)
        assert len(customers) == 1, dump(customers)
        assert stack.line_subscription(customers[0], SOURCE_ACCOUNT_ID) == "OPTIN"
    assert "fanned out 5 events" in worker.log()
