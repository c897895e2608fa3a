"""Linking against the Capillary sandbox: merge the LINE-only customer into the mobile's one,
carry the subscription over, re-run safely, refuse conflicts, and the accountLink event."""

from __future__ import annotations

import pytest

from core.errors import IdentityConflictError, InvalidInputError
from core.link_request import LinkRequest
from core.store.link_sessions import CLAIMED, FAILED, LinkSessionStore
from tasks.events.apply import apply_event
from tasks.linking import account_link
from tasks.linking.entry import link_customer
from tasks.linking.link import apply_link
from tests.helpers import CHANNEL, CHANNEL_ID, SOURCE_ACCOUNT_ID, follow_event, new_user_id
from workers.outcomes import Outcome
from workers.registry import LINK_TASK, LINKING_QUEUE
from workers.replay import replay_one
from workers.runtime import Runtime


@pytest.fixture
def runtime(make_runtime, sandbox):
    """An org that registers LINE-only customers (linking exists for them) and otherwise keeps
    the strict defaults: no lookups by LINE id, an org unit on subscription writes."""
    sandbox.org(required_identifiers=[], non_loyalty_needs_mobile_or_email=False)
    return make_runtime()


def new_mobile() -> str:
    return "66" + str(int(new_user_id()[1:9], 16)).rjust(9, "0")[-9:]


def seed_instore(runtime: Runtime, mobile: str) -> int:
    return runtime.capillary.add_customer(
        {"source": "INSTORE", "identifiers": [{"type": "mobile", "value": mobile}]},
        "non_loyalty").customer_id


def follow(runtime: Runtime, user: str, timestamp: int = 1_700_000_000_000) -> None:
    assert apply_event(runtime, CHANNEL_ID, follow_event(user, timestamp=timestamp)) in (
        "applied", "parked")


def holders(sandbox, value: str) -> list[dict]:
    return [c for c in sandbox.customers() if c.get("mergedInto") is None and any(
        i["value"] == value for p in c["profiles"] for i in p["identifiers"])]


def line_status(customer: dict) -> str | None:
    return next((s["type"] for s in customer["subscriptions"]
                 if s["channel"] == "LINE" and s["accountId"] == SOURCE_ACCOUNT_ID), None)


def writes(sandbox, since: int) -> list[str]:
    return [f"{c['method']} {c['route']}" for c in sandbox.calls()[since:] if c["method"] == "POST"]


def test_line_only_customer_is_merged_into_the_mobile_customer(runtime, sandbox):
    user, mobile = new_user_id(), new_mobile()
    customer_id = seed_instore(runtime, mobile)
    follow(runtime, user)
    line_only = holders(sandbox, user)[0]["id"]
    assert line_only != customer_id

    assert apply_link(runtime, CHANNEL_ID, LinkRequest(user, mobile=mobile)) == Outcome.LINKED

    [linked] = holders(sandbox, user)
    assert linked["id"] == customer_id and holders(sandbox, mobile) == [linked]
    assert {p["source"] for p in linked["profiles"]} == {"INSTORE", "LINE"}
    assert line_status(linked) == "OPTIN"
    merged = next(c for c in sandbox.customers() if c["id"] == line_only)
    assert merged["mergedInto"] == customer_id
    assert runtime.state.cached_customer(CHANNEL_ID, user) == customer_id
    assert runtime.state.identity_hint(user)["mobile"] == mobile


def test_the_same_link_twice_and_a_rerun_after_a_crash_change_nothing(runtime, sandbox):
    user, mobile = new_user_id(), new_mobile()
    seed_instore(runtime, mobile)
    follow(runtime, user)
    request = LinkRequest(user, mobile=mobile)
    assert apply_link(runtime, CHANNEL_ID, request) == Outcome.LINKED
    before = len(sandbox.calls())
    assert apply_link(runtime, CHANNEL_ID, request) == Outcome.DUPLICATE
    assert len(sandbox.calls()) == before
    runtime.state.client.delete(f"linecap:event:{request.link_id(CHANNEL)}")  # lost the outcome
    assert apply_link(runtime, CHANNEL_ID, request) == Outcome.ALREADY_LINKED
    assert writes(sandbox, before) == []
    assert len(holders(sandbox, user)) == 1


def test_an_unfollowed_user_carries_optout_over(runtime, sandbox):
    user, mobile = new_user_id(), new_mobile()
    customer_id = seed_instore(runtime, mobile)
    runtime.capillary.set_subscription(customer_id, account_link_subscription(runtime), True,
                                       "seed")
    follow(runtime, user)
    assert apply_event(runtime, CHANNEL_ID, follow_event(user, timestamp=1_700_000_000_500,
                                                    kind="unfollow")) == "applied"
    apply_link(runtime, CHANNEL_ID, LinkRequest(user, mobile=mobile))
    assert line_status(holders(sandbox, user)[0]) == "OPTOUT"


def account_link_subscription(runtime):
    from tasks.customers import line_subscription

    return line_subscription(runtime, runtime.settings.channel(CHANNEL_ID))


def test_unknown_user_and_unknown_mobile_registers_instore_then_line(runtime, sandbox):
    user, mobile = new_user_id(), new_mobile()
    before = len(sandbox.calls())
    request = LinkRequest(user, mobile=mobile, name="Somchai")
    assert apply_link(runtime, CHANNEL_ID, request) == Outcome.LINKED
    registrations = [c["source"] for c in sandbox.calls()[before:]
                     if c["method"] == "POST" and c["route"] == "/v2/customers"]
    assert registrations == ["INSTORE", "LINE"]
    [customer] = holders(sandbox, user)
    assert holders(sandbox, mobile) == [customer]
    assert line_status(customer) is None  # no follow seen: no subscription invented


def test_line_only_customer_takes_a_mobile_nobody_has(runtime, sandbox):
    user, mobile = new_user_id(), new_mobile()
    follow(runtime, user)
    line_only = holders(sandbox, user)[0]["id"]
    assert apply_link(runtime, CHANNEL_ID, LinkRequest(user, mobile=mobile)) == Outcome.LINKED
    assert [c["id"] for c in holders(sandbox, mobile)] == [line_only]
    assert len(sandbox.customers()) == 1


def test_a_line_user_on_another_persons_customer_is_a_conflict(runtime, sandbox):
    user, first, second = new_user_id(), new_mobile(), new_mobile()
    apply_link(runtime, CHANNEL_ID, LinkRequest(user, mobile=first))
    seed_instore(runtime, second)
    with pytest.raises(IdentityConflictError):
        apply_link(runtime, CHANNEL_ID, LinkRequest(user, mobile=second))
    assert not any(c.get("mergedInto") for c in sandbox.customers())


def test_a_mobile_customer_with_another_line_user_is_a_conflict(runtime, sandbox):
    mobile, other, user = new_mobile(), new_user_id(), new_user_id()
    apply_link(runtime, CHANNEL_ID, LinkRequest(other, mobile=mobile))
    follow(runtime, user)
    with pytest.raises(IdentityConflictError):
        apply_link(runtime, CHANNEL_ID, LinkRequest(user, mobile=mobile))
    assert not any(c.get("mergedInto") for c in sandbox.customers())


def test_link_by_customer_id(runtime, sandbox):
    user, mobile = new_user_id(), new_mobile()
    customer_id = seed_instore(runtime, mobile)
    follow(runtime, user)
    request = LinkRequest(user, customer_id=customer_id)
    assert apply_link(runtime, CHANNEL_ID, request) == Outcome.LINKED
    assert [c["id"] for c in holders(sandbox, user)] == [customer_id]
    with pytest.raises(InvalidInputError):
        apply_link(runtime, CHANNEL_ID, LinkRequest(new_user_id(), customer_id=999))


def test_a_parked_follow_is_released_by_the_link(make_runtime, sandbox):
    runtime = make_runtime(LINECAP_UNKNOWN_USER_STRATEGY="park")
    user, mobile = new_user_id(), new_mobile()
    follow(runtime, user)
    assert runtime.state.parked() and sandbox.customers() == []
    assert apply_link(runtime, CHANNEL_ID, LinkRequest(user, mobile=mobile)) == Outcome.LINKED
    assert runtime.state.parked() == {}
    assert line_status(holders(sandbox, user)[0]) == "OPTIN"


def test_a_failed_link_task_is_dead_lettered_and_replayed_to_the_linking_queue(runtime, sandbox):
    user, first, second = new_user_id(), new_mobile(), new_mobile()
    apply_link(runtime, CHANNEL_ID, LinkRequest(user, mobile=first))
    seed_instore(runtime, second)
    request = LinkRequest(user, mobile=second)
    assert link_customer(CHANNEL_ID, event=request.to_event()) == "dead_lettered"
    letter = runtime.dead_letters.get(request.link_id(CHANNEL))
    assert (letter.task, letter.error_class) == (LINK_TASK, "identity_conflict")

    class Recording:
        def __init__(self) -> None:
            self.sent: list[tuple] = []

        def send_task(self, name, kwargs, task_id, queue, **options):
            self.sent.append((name, kwargs, task_id, queue))

    celery = Recording()
    assert replay_one(runtime.dead_letters, celery, letter.event_id)
    assert celery.sent == [(LINK_TASK, {"channel_id": CHANNEL_ID, "event": request.to_event()},
                            request.link_id(CHANNEL), LINKING_QUEUE)]


# -- the accountLink event ---------------------------------------------------------------------
def account_link_event(user: str | None, nonce: str, result: str = "ok") -> dict:
    from sandboxes.line.events import make_account_link_event

    return make_account_link_event(user, nonce, result)


@pytest.fixture
def published(monkeypatch):
    sent: list[tuple[str, LinkRequest]] = []

    def publish(channel, request):
        sent.append((channel.channel_id, request))
        return request.link_id(channel)

    monkeypatch.setattr(account_link, "publish_link", publish)
    return sent


def sessions(runtime: Runtime) -> LinkSessionStore:
    return LinkSessionStore(runtime.redis, 600)


def bound_session(runtime: Runtime, user: str, mobile: str) -> tuple[str, str]:
    """(session id, nonce) as the brand's login leaves them."""
    session = sessions(runtime).issue(CHANNEL_ID, user, "token").session_id
    binding = sessions(runtime).bind(session, mobile=mobile, name="Somchai")
    return session, binding.nonce


def test_account_link_ok_claims_the_session_and_queues_the_link(runtime, published):
    user, mobile = new_user_id(), new_mobile()
    session, nonce = bound_session(runtime, user, mobile)
    event = account_link_event(user, nonce)
    assert apply_event(runtime, CHANNEL_ID, event) == "link_queued"
    assert published == [(CHANNEL_ID, LinkRequest(user, mobile=mobile, name="Somchai",
                                                  session=session))]
    assert nonce not in str(published[0][1].to_event())  # the nonce never travels further
    assert sessions(runtime).get(session).state == CLAIMED
    assert apply_event(runtime, CHANNEL_ID, event) == "duplicate"
    again = account_link_event(user, nonce)  # another event with the same nonce
    assert apply_event(runtime, CHANNEL_ID, again) == "link_refused_used"
    assert len(published) == 1


@pytest.mark.parametrize("case", ["failed", "unknown", "replaced", "other_user"])
def test_account_link_that_cannot_be_trusted_changes_nothing(runtime, sandbox, published, case):
    user, mobile = new_user_id(), new_mobile()
    session, nonce = bound_session(runtime, user, mobile)
    if case == "replaced":  # a second login bound the session again: the first nonce is void
        sessions(runtime).bind(session, mobile=mobile)
    event = {
        "failed": lambda: account_link_event(user, nonce, "failed"),
        "unknown": lambda: account_link_event(user, "never-issued-nonce-00000"),
        "replaced": lambda: account_link_event(user, nonce),
        "other_user": lambda: account_link_event(new_user_id(), nonce),
    }[case]()
    outcome = apply_event(runtime, CHANNEL_ID, event)
    assert outcome.startswith(("link_failed", "link_refused_"))
    assert published == [] and sandbox.calls() == []
    assert runtime.state.outcome_of(event["webhookEventId"]) == outcome
    assert sessions(runtime).get(session).state != CLAIMED


@pytest.mark.parametrize("case", ["failed", "other_user"])
def test_a_failed_or_foreign_event_burns_the_nonce(runtime, published, case):
    """LINE sends `failed` for any failure, impersonation among them: the nonce must not work
    afterwards, not even with a genuine `ok` event."""
    user, mobile = new_user_id(), new_mobile()
    session, nonce = bound_session(runtime, user, mobile)
    first = account_link_event(user if case == "failed" else new_user_id(), nonce,
                               "failed" if case == "failed" else "ok")
    apply_event(runtime, CHANNEL_ID, first)
    assert sessions(runtime).get(session).state == FAILED
    assert apply_event(runtime, CHANNEL_ID, account_link_event(user, nonce)) == \
        "link_refused_used"
    assert published == []


@pytest.mark.parametrize("field,value", [
    ("source", {"type": "user", "userId": "../../v2/bot/info"}),
    ("link", {"result": "ok", "nonce": "short"}),
    ("link", {"result": "maybe", "nonce": "a-nonce-long-enough"}),
    ("timestamp", float("nan")),
])
def test_an_account_link_event_with_bad_fields_is_refused_in_the_task(runtime, published,
                                                                      field, value):
    user, mobile = new_user_id(), new_mobile()
    session, nonce = bound_session(runtime, user, mobile)
    event = account_link_event(user, nonce)
    event[field] = value
    assert apply_event(runtime, CHANNEL_ID, event) == Outcome.INVALID
    assert published == [] and sessions(runtime).get(session).state != CLAIMED


def test_account_link_end_to_end_in_process(runtime, sandbox, monkeypatch):
    user, mobile = new_user_id(), new_mobile()
    customer_id = seed_instore(runtime, mobile)
    follow(runtime, user)
    monkeypatch.setattr(account_link, "publish_link",
                        lambda channel, request: apply_link(runtime, channel.channel_id, request))
    session, nonce = bound_session(runtime, user, mobile)
    assert apply_event(runtime, CHANNEL_ID, account_link_event(user, nonce)) == "link_queued"
    assert [c["id"] for c in holders(sandbox, user)] == [customer_id]
    assert sessions(runtime).get(session).outcome == Outcome.LINKED
