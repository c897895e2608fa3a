"""Applying follows and unfollows against the Capillary sandbox: order, unknown users, parked
events, call counts, and what strict orgs refuse (and which setting the dead letter names)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from core.errors import ConfigurationError, OrgRulesError
from tasks.customers import line_subscription
from tasks.events.apply import apply_event
from tests.helpers import CHANNEL_ID, SOURCE_ACCOUNT_ID, follow_event, new_user_id

MOBILE = "66812345670"
T0 = 1_700_000_000_000  # LINE timestamps are milliseconds of the past


@pytest.fixture
def runtime(make_runtime, sandbox):
    sandbox.lenient()
    return make_runtime()


@pytest.fixture
def strict(make_runtime):
    """The sandbox's defaults: the strictest documented org."""
    return make_runtime()


def line_status(customer: dict) -> str | None:
    return next((s["type"] for s in customer["subscriptions"]
                 if s["channel"] == "LINE" and s["accountId"] == SOURCE_ACCOUNT_ID), None)


def subscription_writes(sandbox) -> list[dict]:
    return [c for c in sandbox.calls()
            if c["method"] == "POST" and c["path"].endswith("/subscriptions")]


def test_an_older_event_after_a_newer_one_is_stale(runtime, sandbox):
    user = new_user_id()
    assert apply_event(runtime, CHANNEL_ID, follow_event(user, timestamp=T0 + 2000)) == "applied"
    assert apply_event(runtime, CHANNEL_ID,
                       follow_event(user, timestamp=T0 + 1000, kind="unfollow")) == "stale"
    [customer] = sandbox.customers()
    assert line_status(customer) == "OPTIN"


def test_an_unfollow_from_an_unknown_user_registers_and_opts_out(runtime, sandbox):
    """The guide: "If the user does not exist in the system create an INSTORE and LINE
    profile" covers opt-outs too."""
    user = new_user_id()
    assert apply_event(runtime, CHANNEL_ID, follow_event(user, kind="unfollow")) == "applied"
    [customer] = sandbox.customers()
    assert sorted(p["source"] for p in customer["profiles"]) == ["INSTORE", "LINE"]
    assert line_status(customer) == "OPTOUT"


@pytest.mark.parametrize("order", [("follow", "unfollow"), ("unfollow", "follow")])
def test_every_arrival_order_ends_the_same(runtime, sandbox, order):
    user = new_user_id()
    events = {"follow": follow_event(user, timestamp=T0 + 1000),
              "unfollow": follow_event(user, timestamp=T0 + 2000, kind="unfollow")}
    for kind in order:
        apply_event(runtime, CHANNEL_ID, events[kind])
    [customer] = sandbox.customers()
    assert sorted(p["source"] for p in customer["profiles"]) == ["INSTORE", "LINE"]
    assert line_status(customer) == "OPTOUT"


def test_a_follow_from_an_opted_in_customer_writes_nothing(runtime, sandbox):
    """The lookup's status is nested under subscriptionInfo; read there, it saves the write."""
    user = new_user_id()
    apply_event(runtime, CHANNEL_ID, follow_event(user, timestamp=T0 + 1000))
    runtime.state.forget_customer(CHANNEL_ID, user)  # so the next event looks the user up
    before = len(subscription_writes(sandbox))
    assert apply_event(runtime, CHANNEL_ID, follow_event(user, timestamp=T0 + 2000)) == "applied"
    assert len(subscription_writes(sandbox)) == before


def test_a_known_cached_user_costs_one_call(runtime, sandbox):
    user = new_user_id()
    apply_event(runtime, CHANNEL_ID, follow_event(user, timestamp=T0 + 1000))
    before = len(sandbox.calls())
    apply_event(runtime, CHANNEL_ID, follow_event(user, timestamp=T0 + 2000, kind="unfollow"))
    assert len(sandbox.calls()) - before == 1


def test_a_cached_customer_merged_away_is_resolved_again_at_once(runtime, sandbox):
    """8069: forget the id, find the survivor, write there; no retry, no dead letter."""
    user, member_mobile = new_user_id(), "66800000077"
    apply_event(runtime, CHANNEL_ID, follow_event(user, timestamp=T0 + 1000))
    line_only = runtime.state.cached_customer(CHANNEL_ID, user)
    member = runtime.capillary.add_customer(
        {"source": "INSTORE", "identifiers": [{"type": "mobile", "value": member_mobile}]},
        "non_loyalty").customer_id
    runtime.capillary.change_identifier(line_only, "LINE", SOURCE_ACCOUNT_ID,
                                        add=[{"type": "mobile", "value": member_mobile}])
    assert apply_event(runtime, CHANNEL_ID,
                       follow_event(user, timestamp=T0 + 2000, kind="unfollow")) == "applied"
    assert runtime.state.cached_customer(CHANNEL_ID, user) == member
    survivor = next(c for c in sandbox.customers() if c["id"] == member)
    assert line_status(survivor) == "OPTOUT"


def test_the_park_strategy_keeps_the_latest_event_until_a_mobile_arrives(runtime, sandbox):
    runtime.settings = replace(runtime.settings, unknown_user_strategy="park")
    user = new_user_id()
    assert apply_event(runtime, CHANNEL_ID, follow_event(user, timestamp=T0 + 2000)) == "parked"
    assert apply_event(runtime, CHANNEL_ID,
                       follow_event(user, timestamp=T0 + 1000, kind="unfollow")) == "stale"
    assert apply_event(runtime, CHANNEL_ID,
                       follow_event(user, timestamp=T0 + 3000, kind="unfollow")) == "parked"
    assert runtime.state.parked_event(CHANNEL_ID, user)["type"] == "unfollow"
    assert sandbox.customers() == []
    # A mobile arrives (CLI register / import / link) and the parked event is sent again.
    runtime.state.remember_identity(user, MOBILE)
    parked = runtime.state.unpark(CHANNEL_ID, user)
    assert apply_event(runtime, CHANNEL_ID, parked) == "applied"
    [customer] = sandbox.customers()
    assert line_status(customer) == "OPTOUT"


def test_a_strict_org_refuses_a_customer_without_a_mobile_and_says_what_to_set(strict,
                                                                             sandbox):
    with pytest.raises(OrgRulesError) as info:
        apply_event(strict, CHANNEL_ID, follow_event(new_user_id()))
    assert "1006" in str(info.value)
    assert "LINECAP_UNKNOWN_USER_STRATEGY=park" in str(info.value)
    assert sandbox.customers() == []
    sandbox.org(required_identifiers=[])
    with pytest.raises(OrgRulesError, match="CAPILLARY_LOYALTY_TYPE=loyalty"):
        apply_event(strict, CHANNEL_ID, follow_event(new_user_id()))


def test_a_strict_org_registers_a_user_whose_mobile_is_known(strict, sandbox):
    user = new_user_id()
    strict.state.remember_identity(user, MOBILE)
    assert apply_event(strict, CHANNEL_ID, follow_event(user)) == "applied"
    [customer] = sandbox.customers()
    assert sorted(p["source"] for p in customer["profiles"]) == ["INSTORE", "LINE"]
    assert line_status(customer) == "OPTIN"


def test_lookups_by_line_id_refused_fall_back_to_the_external_id_once(strict, sandbox):
    user = new_user_id()
    strict.state.remember_identity(user, MOBILE)
    apply_event(strict, CHANNEL_ID, follow_event(user, timestamp=T0 + 1000))
    refused = [c for c in sandbox.calls() if c["query"].get("identifierName") == "line"]
    assert len(refused) == 1 and refused[0]["status"] == 400, "asked once, then remembered"
    strict.state.forget_customer(CHANNEL_ID, user)
    apply_event(strict, CHANNEL_ID, follow_event(user, timestamp=T0 + 2000, kind="unfollow"))
    assert len([c for c in sandbox.calls() if c["query"].get("identifierName") == "line"]) == 1
    assert line_status(sandbox.customers()[0]) == "OPTOUT"


def test_lookups_by_line_id_only_name_the_setting_when_refused(make_runtime):
    runtime = make_runtime(CAPILLARY_LINE_LOOKUP="line")
    with pytest.raises(ConfigurationError, match="CAPILLARY_LINE_LOOKUP=externalId"):
        apply_event(runtime, CHANNEL_ID, follow_event(new_user_id()))


def test_a_missing_org_unit_names_its_setting(make_runtime, sandbox):
    runtime = make_runtime(CAPILLARY_ORG_UNIT_ID="0")
    user = new_user_id()
    runtime.state.remember_identity(user, MOBILE)
    with pytest.raises(ConfigurationError, match="CAPILLARY_ORG_UNIT_ID"):
        apply_event(runtime, CHANNEL_ID, follow_event(user))


def test_a_loyalty_member_gets_the_line_profile_without_conversion(strict, sandbox):
    """1046: a non_loyalty LINE registration must not land on a loyalty member; linecap
    registers it with the member's own loyalty type."""
    member = strict.capillary.add_customer(
        {"source": "INSTORE", "identifiers": [{"type": "mobile", "value": MOBILE}]},
        "loyalty").customer_id
    user = new_user_id()
    strict.state.remember_identity(user, MOBILE)
    assert apply_event(strict, CHANNEL_ID, follow_event(user)) == "applied"
    [customer] = sandbox.customers()
    assert customer["id"] == member and customer["loyaltyInfo"]["loyaltyType"] == "loyalty"
    assert line_subscription(strict, strict.settings.channel(CHANNEL_ID)).org_unit_id == 100
