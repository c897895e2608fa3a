"""A back-fill batch against the sandbox: known followers cost a write at most, unknown ones are
registered together, busy or failing ones go on alone, refused ones are their own dead
letters, and a second run changes nothing."""

from __future__ import annotations

import pytest

from core.errors import ComeBackLater
from tasks.events.apply import apply_event
from tasks.events.backfill import backfill_event, backfill_followers, calls_needed
from tests.helpers import CHANNEL_ID, SOURCE_ACCOUNT_ID, follow_event, new_user_id

NOW = 1_790_000_000_000  # in the past, as LINE's timestamps are


def line_status(customer: dict) -> str | None:
    return next((s["type"] for s in customer["subscriptions"]
                 if s["channel"] == "LINE" and s["accountId"] == SOURCE_ACCOUNT_ID), None)


@pytest.fixture
def runtime(make_runtime, sandbox):
    sandbox.lenient()
    return make_runtime()


def run(runtime, users, published=None):
    sink = published if published is not None else []
    return backfill_followers(runtime, CHANNEL_ID, {"users": users, "timestamp": NOW},
                              publish=lambda channel, event: sink.append(event))


def test_unknown_followers_are_registered_together_and_opted_in(runtime, sandbox):
    users = [new_user_id() for _ in range(4)]
    assert run(runtime, users) == "applied"
    assert {line_status(c) for c in sandbox.customers()} == {"OPTIN"}
    assert len(sandbox.customers()) == 4
    bulk = [c for c in sandbox.calls() if c["path"] == "/v2/customers/bulk"]
    assert [len(c["body"]) for c in bulk] == [4, 4], "one INSTORE batch, one LINE batch"
    for user in users:
        assert runtime.state.outcome_of(
            backfill_event(CHANNEL_ID, user, NOW)["webhookEventId"]) == "applied"
    before = len(sandbox.calls())
    run(runtime, users)
    assert len(sandbox.calls()) == before, "the same day again: nothing to call"


def test_a_known_opted_out_follower_is_opted_in_and_a_newer_unfollow_wins(runtime, sandbox):
    known, blocked_later = new_user_id(), new_user_id()
    apply_event(runtime, CHANNEL_ID, follow_event(known, timestamp=NOW - 5000, kind="unfollow"))
    apply_event(runtime, CHANNEL_ID, follow_event(blocked_later, timestamp=NOW + 5000,
                                                  kind="unfollow"))
    run(runtime, [known, blocked_later])
    status = {c["profiles"][1]["identifiers"][0]["value"]: line_status(c)
              for c in sandbox.customers()}
    assert status == {known: "OPTIN", blocked_later: "OPTOUT"}


def test_a_busy_follower_goes_on_alone(runtime, sandbox):
    busy, free = new_user_id(), new_user_id()
    published: list[dict] = []
    with runtime.state.user_lock(CHANNEL_ID, busy):
        run(runtime, [busy, free], published)
    assert [e["source"]["userId"] for e in published] == [busy]
    assert len(sandbox.customers()) == 1


def test_a_refused_follower_is_its_own_dead_letter(make_runtime, sandbox):
    runtime = make_runtime()  # the strict org: no customer without a mobile
    refused, known = new_user_id(), new_user_id()
    runtime.state.remember_identity(known, "66800000071")
    run(runtime, [refused, known])
    letter = runtime.dead_letters.get(backfill_event(CHANNEL_ID, refused, NOW)["webhookEventId"])
    assert letter.task == "linecap.process_event" and letter.error_class == "org_rules"
    [customer] = sandbox.customers()
    assert line_status(customer) == "OPTIN"


def test_a_batch_reserves_its_calls_and_waits_whole_when_the_budget_lacks_room(runtime,
                                                                               sandbox):
    known, unknown = new_user_id(), [new_user_id() for _ in range(3)]
    apply_event(runtime, CHANNEL_ID, follow_event(known, timestamp=NOW - 5000, kind="unfollow"))
    users = [known, *unknown]
    assert calls_needed(runtime, CHANNEL_ID, users, NOW) == {
        "lookup": 3, "bulk": 2, "subscriptions": 4}
    used = runtime.limiter.stats().used  # the known follower's registration
    runtime.limiter.limit = used + 8  # one short of the batch's 9
    before = len(sandbox.calls())
    with pytest.raises(ComeBackLater, match="no room for 9 calls"):
        run(runtime, users)
    assert len(sandbox.calls()) == before, "not one call before the budget has room for all"
    assert runtime.limiter.stats().used == used
    runtime.limiter.limit = used + 9
    run(runtime, users)
    assert runtime.limiter.stats().used == used + 9, "as reserved: no call took a second slot"


def test_each_followers_ending_goes_into_their_history(runtime, sandbox):
    registered, busy = new_user_id(), new_user_id()
    with runtime.state.user_lock(CHANNEL_ID, busy):
        run(runtime, [registered, busy])
    endings = {user: runtime.history.read(CHANNEL_ID, user)[-1] for user in (registered, busy)}
    assert (endings[registered]["outcome"], endings[registered]["reason"]) == \
        ("applied", "registered in a batch")
    assert endings[busy]["outcome"] == "requeued" and "busy" in endings[busy]["reason"]
    assert endings[registered]["event"] == backfill_event(CHANNEL_ID, registered,
                                                          NOW)["webhookEventId"]
