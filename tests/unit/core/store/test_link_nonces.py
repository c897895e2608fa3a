"""Account-link nonces: unguessable, expiring, bound by the brand, claimed once."""

from __future__ import annotations

import pytest

from core.store.link_nonces import (
    BOUND,
    CLAIMED,
    ISSUED,
    PREFIX,
    UNBOUND,
    UNKNOWN,
    USED,
    WRONG_USER,
    NonceStore,
)
from tests.helpers import CHANNEL_ID, new_user_id


@pytest.fixture
def store(fake_redis):
    return NonceStore(fake_redis, ttl_seconds=600)


def test_issue_stores_the_nonce_with_a_ttl(store, fake_redis):
    user = new_user_id()
    issued = store.issue(CHANNEL_ID, user, "link-token-1")
    assert len(issued.nonce) >= 32 and issued.nonce != store.issue(CHANNEL_ID, user, "t").nonce
    assert 0 < fake_redis.ttl(PREFIX + issued.nonce) <= 600
    found = store.get(issued.nonce)
    assert (found.channel_id, found.line_user_id, found.link_token, found.state) == \
        (CHANNEL_ID, user, "link-token-1", ISSUED)
    assert "link-token-1" not in repr(found)


def test_unknown_malformed_and_expired_nonces_are_not_found(store, fake_redis):
    issued = store.issue(CHANNEL_ID, new_user_id(), "t")
    fake_redis.delete(PREFIX + issued.nonce)  # what the TTL does
    for nonce in (issued.nonce, "never-issued-nonce-000", "short", "../../etc", ""):
        assert store.get(nonce) is None
        assert store.bind(nonce, mobile="66812345678") == UNKNOWN
        assert store.claim(nonce, "E1", CHANNEL_ID, new_user_id(), 60) == (UNKNOWN, None)


def test_bind_then_claim_once(store, fake_redis):
    user = new_user_id()
    nonce = store.issue(CHANNEL_ID, user, "t").nonce
    assert store.claim(nonce, "E1", CHANNEL_ID, user, 60) == (UNBOUND, None)
    assert store.bind(nonce, mobile="66812345678", name="Somchai") == BOUND
    assert store.get(nonce).state == BOUND
    status, claimed = store.claim(nonce, "E1", CHANNEL_ID, user, 3600)
    assert status == CLAIMED
    assert (claimed.mobile, claimed.name, claimed.claimed_by, claimed.state) == \
        ("66812345678", "Somchai", "E1", CLAIMED)
    assert fake_redis.ttl(PREFIX + nonce) > 600  # kept for a re-run of the same event
    assert store.claim(nonce, "E1", CHANNEL_ID, user, 3600)[0] == CLAIMED  # same event again
    assert store.claim(nonce, "E2", CHANNEL_ID, user, 3600) == (USED, None)
    assert store.bind(nonce, mobile="66899999999") == USED
    assert store.get(nonce).mobile == "66812345678"


def test_rebinding_replaces_the_target_until_claimed(store):
    user = new_user_id()
    nonce = store.issue(CHANNEL_ID, user, "t").nonce
    store.bind(nonce, mobile="66812345678", name="A")
    store.bind(nonce, customer_id=1000007)
    found = store.get(nonce)
    assert (found.mobile, found.customer_id, found.name) == (None, 1000007, None)
    with pytest.raises(ValueError):
        store.bind(nonce, mobile="66812345678", customer_id=1)


def test_a_nonce_issued_for_another_user_or_channel_is_not_claimed(store):
    user = new_user_id()
    nonce = store.issue(CHANNEL_ID, user, "t").nonce
    store.bind(nonce, mobile="66812345678")
    assert store.claim(nonce, "E1", CHANNEL_ID, new_user_id(), 60) == (WRONG_USER, None)
    assert store.claim(nonce, "E1", "other-channel", user, 60) == (WRONG_USER, None)
    assert store.claim(nonce, "E2", CHANNEL_ID, user, 60)[0] == CLAIMED


def test_outcome_is_noted_but_never_revives_an_expired_nonce(store, fake_redis):
    nonce = store.issue(CHANNEL_ID, new_user_id(), "t").nonce
    store.record_outcome(nonce, "linked")
    assert store.get(nonce).outcome == "linked"
    fake_redis.delete(PREFIX + nonce)
    store.record_outcome(nonce, "linked")
    assert not fake_redis.exists(PREFIX + nonce)
