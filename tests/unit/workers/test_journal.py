"""The task frame writes each run into its user's history: the event as received, the
Capillary calls, how the run ended and why, and never fails the event when it cannot."""

from __future__ import annotations

import json
import logging
from types import SimpleNamespace

import fakeredis
import pytest

from core.store.history import HistoryStore
from tasks.events.entry import process_event
from tasks.linking.entry import link_customer
from tests.helpers import CHANNEL_ID, follow_event, new_user_id
from workers.registry import BULK_EVENTS_QUEUE, EVENTS_QUEUE

T0 = 1_700_000_000_000


class FakeTask:
    """Celery's task as the frame sees it."""

    def __init__(self, queue: str = EVENTS_QUEUE) -> None:
        self.request = SimpleNamespace(id="task-1", delivery_info={"routing_key": queue})


@pytest.fixture
def runtime(make_runtime, sandbox):
    sandbox.lenient()
    return make_runtime(CAPILLARY_TIMEOUT_SECONDS="1", LINECAP_RETRY_HORIZON_SECONDS="3600")


def run(event, attempts=None, queue=EVENTS_QUEUE):
    return process_event.spec.run(FakeTask(queue), CHANNEL_ID, event, attempts)


def steps(runtime, user):
    return [(e["kind"], e.get("outcome") or e.get("call") or e.get("queue"))
            for e in runtime.history.read(CHANNEL_ID, user)]


def test_an_applied_follow_shows_what_arrived_each_call_and_the_outcome(runtime):
    user = new_user_id()
    event = follow_event(user, timestamp=T0)
    assert run(event) == "applied"
    entries = runtime.history.read(CHANNEL_ID, user)
    received, *calls, outcome = entries
    assert (received["kind"], received["event"], received["type"], received["timestamp"],
            received["redelivery"], received["queue"]) == \
        ("received", event["webhookEventId"], "follow", T0, False, EVENTS_QUEUE)
    assert [c["call"] for c in calls] == [
        "GET /v2/customers/lookup/customerDetails", "POST /v2/customers", "POST /v2/customers",
        "POST /v2/customers/{id}/subscriptions"]
    # Capillary answers "not found" with a 400 and its code (docs/CAPILLARY.md)
    assert [c["status"] for c in calls] == ["400", "200", "200", "200"]
    assert all(c["kind"] == "call" and c["ms"] >= 0 for c in calls)
    assert (outcome["outcome"], outcome["attempt"], outcome["reason"]) == \
        ("applied", 1, "set to OPTIN")
    assert isinstance(outcome["customer"], int)


def test_a_redelivery_is_marked_and_its_duplicate_says_why(runtime):
    user = new_user_id()
    event = follow_event(user)
    run(event)
    redelivered = {**event, "deliveryContext": {"isRedelivery": True}}
    assert run(redelivered) == "duplicate"
    *_, received, outcome = runtime.history.read(CHANNEL_ID, user)
    assert received["redelivery"] is True
    assert (outcome["outcome"], outcome["reason"]) == \
        ("duplicate", "this event already ended as applied")


def test_a_stale_event_names_the_newer_one(runtime):
    user = new_user_id()
    newer = follow_event(user, timestamp=T0 + 2000)
    run(newer)
    assert run(follow_event(user, timestamp=T0, kind="unfollow")) == "stale"
    outcome = runtime.history.read(CHANNEL_ID, user)[-1]
    assert outcome["outcome"] == "stale" and outcome["latest_event"] == newer["webhookEventId"]


def test_retries_say_why_and_when_and_count_their_attempt(runtime, sandbox):
    user = new_user_id()
    event = follow_event(user)
    sandbox.faults(fail_next=[{"status": 503, "path_contains": "/subscriptions", "count": 3}])
    assert run(event) == "retried"
    assert run(event, {"failures": 1, "first_failure_at": 1.0}) == "applied"
    history = runtime.history.read(CHANNEL_ID, user)
    assert [e["kind"] for e in history].count("received") == 1, "a retry is not a new arrival"
    retried = next(e for e in history if e.get("outcome") == "retried")
    assert retried["attempt"] == 1 and retried["again_in_s"] > 0
    assert "TransientError" in retried["reason"] and "503" in retried["reason"]
    failed_calls = [e for e in history if e.get("status") == "503"]
    assert len(failed_calls) == 3  # the quick retries inside the call, each one recorded
    assert history[-1]["outcome"] == "applied" and history[-1]["attempt"] == 2


def test_a_busy_user_is_deferred_not_retried(runtime):
    user = new_user_id()
    with runtime.state.user_lock(CHANNEL_ID, user):
        assert run(follow_event(user)) == "retried"
    outcome = runtime.history.read(CHANNEL_ID, user)[-1]
    assert outcome["outcome"] == "deferred" and "being applied" in outcome["reason"]


def test_a_dead_letter_keeps_its_reason(runtime, sandbox):
    user = new_user_id()
    sandbox.faults(fail_next=[{"status": 400, "path_contains": "/subscriptions"}])
    assert run(follow_event(user)) == "dead_lettered"
    outcome = runtime.history.read(CHANNEL_ID, user)[-1]
    assert outcome["outcome"] == "dead_lettered"
    assert outcome["reason"].startswith("invalid_input: POST /v2/customers/{id}/subscriptions")


def test_a_replayed_message_comes_from_the_bulk_lane(runtime):
    user = new_user_id()
    run(follow_event(user), queue=BULK_EVENTS_QUEUE)
    assert runtime.history.read(CHANNEL_ID, user)[0]["queue"] == BULK_EVENTS_QUEUE


def test_a_link_run_is_recorded_under_its_link(runtime):
    user = new_user_id()
    payload = {"type": "linkCustomer", "source": {"type": "user", "userId": user},
               "link": {"mobile": "66812345678"}}
    link_customer.spec.run(FakeTask(), CHANNEL_ID, payload)
    (outcome,) = runtime.history.read(CHANNEL_ID, user)[-1:]
    assert outcome["kind"] == "outcome" and outcome["type"] == "link"
    assert not any(e["kind"] == "received" for e in runtime.history.read(CHANNEL_ID, user))


def test_a_history_that_cannot_be_written_does_not_fail_the_event(runtime, sandbox, caplog):
    server = fakeredis.FakeServer()
    server.connected = False
    runtime.history = HistoryStore(fakeredis.FakeRedis(server=server))
    user = new_user_id()
    with caplog.at_level(logging.WARNING, logger="linecap.history"):
        assert run(follow_event(user)) == "applied"
        sandbox.faults(fail_next=[{"status": 400, "path_contains": "/subscriptions"}])
        assert run(follow_event(user)) == "dead_lettered"
    assert caplog.text.count("history not recorded") == 2
    assert len([c for c in sandbox.customers() if user in json.dumps(c)]) == 1
