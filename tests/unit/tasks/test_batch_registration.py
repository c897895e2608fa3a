"""Registering many people with the batch API against the sandbox: every item's answer lands on
its own person, a batch over the limit goes again as halves, and the calls are two per batch."""

from __future__ import annotations

import pytest

from core.errors import IdentityConflictError, OrgRulesError
from tasks.batch_registration import Person, Registered, register_people
from tasks.customers import Identity, external_id
from tests.helpers import CHANNEL_ID, new_user_id


@pytest.fixture
def runtime(make_runtime):
    return make_runtime()


def by_mobile(user: str, mobile: str) -> Person:
    return Person(user, Identity("mobile", mobile))


def batch_calls(sandbox) -> list[int]:
    """The number of items of each batch call, in order."""
    return [len(c["body"]) for c in sandbox.calls() if c["path"] == "/v2/customers/bulk"]


def test_each_item_lands_on_its_own_person(runtime, sandbox):
    channel = runtime.channel(CHANNEL_ID)
    member = runtime.capillary.add_customer(
        {"source": "INSTORE", "identifiers": [{"type": "mobile", "value": "66800000002"}]},
        "non_loyalty").customer_id
    taken_line = new_user_id()  # already on another person's customer in this LINE account
    register_people(runtime, channel, [by_mobile(taken_line, "66800000004")])
    new, existing, refused = new_user_id(), new_user_id(), new_user_id()
    people = [by_mobile(new, "66800000001"), by_mobile(existing, "66800000002"),
              Person(refused, Identity("externalId", external_id(runtime, refused))),
              by_mobile(taken_line, "66800000005")]
    results = register_people(runtime, channel, people)
    assert isinstance(results[new], Registered) and results[new].new_line_profile
    assert results[existing] == Registered(member, True), "the member got the LINE profile"
    assert isinstance(results[refused], OrgRulesError), "the strict org wants a mobile"
    assert "LINECAP_UNKNOWN_USER_STRATEGY=park" in str(results[refused])
    assert isinstance(results[taken_line], IdentityConflictError)
    assert batch_calls(sandbox)[-2:] == [4, 3], "INSTORE for all, then LINE for the three"
    assert runtime.state.cached_customer(CHANNEL_ID, existing) == member


def test_registering_again_finds_everyone_already_there(runtime, sandbox):
    channel = runtime.channel(CHANNEL_ID)
    people = [by_mobile(new_user_id(), f"6680000001{i}") for i in range(3)]
    first = register_people(runtime, channel, people)
    again = register_people(runtime, channel, people)
    assert {u: r.customer_id for u, r in again.items()} == \
        {u: r.customer_id for u, r in first.items()}
    assert all(not r.new_line_profile for r in again.values())
    assert len({c["id"] for c in sandbox.customers()}) == 3, "nobody twice"


def test_a_batch_over_the_limit_goes_again_as_halves(make_runtime, sandbox):
    sandbox.org(bulk_limit=3)
    runtime = make_runtime(CAPILLARY_BATCH_SIZE="8")
    people = [by_mobile(new_user_id(), f"668000000{i:02d}") for i in range(8)]
    results = register_people(runtime, runtime.channel(CHANNEL_ID), people)
    assert all(isinstance(r, Registered) for r in results.values())
    assert batch_calls(sandbox) == [8, 4, 2, 2, 2, 2, 2, 2, 2, 2]
    assert runtime.state.batch_limit() == 2, "remembered, so the next batch starts small"
    failures = [c for c in sandbox.calls() if c["status"] == 400]
    assert len(failures) == 2 and all(c["path"] == "/v2/customers/bulk" for c in failures)


def test_a_batch_call_refused_as_a_whole_is_each_persons_refusal(runtime, sandbox):
    sandbox.faults(fail_next=[{"status": 400, "path_contains": "/v2/customers/bulk"}])
    people = [by_mobile(new_user_id(), "66800000011"), by_mobile(new_user_id(), "66800000012")]
    results = register_people(runtime, runtime.channel(CHANNEL_ID), people)
    assert [type(results[p.user_id]).__name__ for p in people] == ["InvalidInputError"] * 2
    assert sandbox.customers() == [] and batch_calls(sandbox) == [2], "no LINE batch after it"
