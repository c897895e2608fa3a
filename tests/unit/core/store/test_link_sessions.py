"""Account-link sessions: issued without a nonce, bound with a fresh one (digest only in
Redis), claimed once by the current nonce, burned by a failure, every key expiring."""

from __future__ import annotations

import pytest

from core.store.link_sessions import (
    BOUND,
    BURNED,
    CLAIMED,
    FAILED,
    ISSUED,
    NONCE_PREFIX,
    PREFIX,
    UNKNOWN,
    USED,
    WRONG_USER,
    LinkSessionStore,
    nonce_digest,
)

USER = "U" + "a" * 32


@pytest.fixture
def store(fake_redis):
    return LinkSessionStore(fake_redis, ttl_seconds=600)


def bound(store) -> tuple[str, str]:
    session = store.issue("c1", USER, "token", "Somchai").session_id
    return session, store.bind(session, mobile="66812345678").nonce


def test_issue_makes_a_session_without_any_nonce(store, fake_redis):
    session = store.issue("c1", USER, "token", "Somchai")
    assert session.state == ISSUED and len(session.session_id) == 32
    assert fake_redis.keys(NONCE_PREFIX + "*") == []
    assert 590 < fake_redis.ttl(PREFIX + session.session_id) <= 600
    assert store.get(session.session_id).display_name == "Somchai"


def test_bind_makes_a_fresh_nonce_each_time_and_stores_only_its_digest(store, fake_redis):
    session, first = bound(store)
    second = store.bind(session, customer_id=7).nonce
    assert first != second and len(first) >= 22
    assert store.session_of(first) == store.session_of(second) == session
    dump = str({k: fake_redis.dump(k) for k in fake_redis.keys("*")})
    assert first not in dump and second not in dump
    assert all(fake_redis.ttl(k) > 0 for k in fake_redis.keys("*"))
    found = store.get(session)
    assert (found.state, found.customer_id, found.mobile) == (BOUND, 7, None)


def test_only_the_current_nonce_claims_and_only_once(store):
    session, old = bound(store)
    current = store.bind(session, mobile="66812345678").nonce
    assert store.claim(old, "E1", "c1", USER, 60) == (UNKNOWN, None)
    status, claimed = store.claim(current, "E2", "c1", USER, 60)
    assert status == CLAIMED and claimed.session_id == session
    assert store.claim(current, "E2", "c1", USER, 60)[0] == CLAIMED  # the same event re-run
    assert store.claim(current, "E3", "c1", USER, 60) == (USED, None)
    assert store.bind(session, mobile="66812345678").status == USED


def test_a_nonce_for_another_user_or_channel_ends_the_session(store):
    session, nonce = bound(store)
    assert store.claim(nonce, "E1", "c1", "U" + "b" * 32, 60) == (WRONG_USER, None)
    assert store.get(session).state == FAILED
    assert store.claim(nonce, "E2", "c1", USER, 60) == (USED, None)


def test_a_failed_event_burns_the_nonce(store):
    session, nonce = bound(store)
    assert store.burn(nonce, "link_failed") == BURNED
    assert store.get(session).state == FAILED and store.get(session).outcome == "link_failed"
    assert store.claim(nonce, "E1", "c1", USER, 60) == (USED, None)
    assert store.bind(session, mobile="66812345678").status == FAILED
    assert store.burn("never-issued-nonce", "link_failed") == UNKNOWN


def test_a_failure_after_a_success_does_not_undo_it(store):
    session, nonce = bound(store)
    store.claim(nonce, "E1", "c1", USER, 60)
    assert store.burn(nonce, "link_failed") == USED
    assert store.get(session).state == CLAIMED


@pytest.mark.parametrize("bad", ["", "short", "../../etc/passwd", "x" * 33, "a b" * 11])
def test_malformed_session_ids_are_unknown(store, bad):
    assert store.get(bad) is None
    assert store.bind(bad, mobile="66812345678").status == UNKNOWN


def test_nonce_digest_is_sha256_hex():
    assert len(nonce_digest("n")) == 64
