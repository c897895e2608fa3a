"""A user lock's lease is short (a dead holder frees it soon) and renewed while its holder
works (a long step keeps it)."""

from __future__ import annotations

import time

import fakeredis
import pytest

from core.errors import ComeBackLater
from core.store.lock_renewal import LockRenewer
from core.store.state import StateStore

LEASE = 0.5


@pytest.fixture
def store():
    return StateStore(fakeredis.FakeRedis(decode_responses=True), 60, 60, LEASE)


def test_a_lock_held_longer_than_its_lease_stays_held(store):
    with store.user_lock("c", "U1"):
        time.sleep(LEASE * 4)
        with pytest.raises(ComeBackLater), store.user_lock("c", "U1"):
            pass
    with store.user_lock("c", "U1"):
        pass


def test_a_released_lock_is_no_longer_renewed(store):
    with store.user_lock("c", "U1"):
        pass
    assert store._renewer.held() == {}
    assert store.client.get("linecap:lock:c:U1") is None


def test_a_lock_that_expired_and_was_taken_is_dropped_not_extended():
    client = fakeredis.FakeRedis(decode_responses=True)
    extended = []

    def extend(key: str, token: str) -> bool:
        extended.append(key)
        return client.get(key) == token

    renewer = LockRenewer(extend, lease_seconds=60)
    client.set("lock", "someone-else")
    renewer.hold("lock", "mine")
    renewer.renew_all()
    assert extended == ["lock"] and renewer.held() == {}
    assert client.get("lock") == "someone-else"


def test_a_dead_holders_lock_frees_within_one_lease(store):
    """A SIGKILLed holder neither releases nor renews: only the lease frees the lock."""
    key = "linecap:lock:c:U1"
    store.client.set(key, "dead-holder", px=int(LEASE * 1000))
    with pytest.raises(ComeBackLater) as info, store.user_lock("c", "U1"):
        pass
    assert info.value.wait_seconds <= LEASE
    time.sleep(LEASE + 0.1)
    with store.user_lock("c", "U1"):
        pass
