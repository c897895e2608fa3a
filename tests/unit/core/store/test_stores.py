"""State store, dead-letter store, replay and the shared rate limiter on fakeredis."""

from __future__ import annotations

import fakeredis
import pytest

from core.errors import ComeBackLater
from core.store.dead_letters import DeadLetterStore
from core.store.rate_budget import SharedRateLimiter
from core.store.state import Retention, StateStore, UserRecord, UserView
from workers.replay import replay_all, replay_one


@pytest.fixture
def client():
    return fakeredis.FakeRedis(decode_responses=True)


def test_user_lock_is_exclusive_and_released(client):
    store = StateStore(client, 60, 60, 30)
    with store.user_lock("c", "U1") as lock:
        with pytest.raises(ComeBackLater) as info, store.user_lock("c", "U1"):
            pass
        assert 0 < info.value.wait_seconds <= 5
        assert lock.extend()
        with store.user_lock("c", "U2"):
            pass
    with store.user_lock("c", "U1"):
        pass


def test_finish_event_records_outcome_and_order_atomically(client):
    store = StateStore(client, 60, 60, 30)
    store.finish_event("E1", "applied", "c", "U1", 1000, "followed")
    assert store.outcome_of("E1") == "applied"
    record = store.user_record("c", "U1")
    assert record == UserRecord(1000, "E1", "followed")
    assert record.is_newer_than(999, "E9")
    assert record.is_newer_than(1000, "E0")  # same ms: event id breaks the tie
    assert not record.is_newer_than(1000, "E2")
    assert not record.is_newer_than(1001, "E0")
    assert client.ttl("linecap:event:E1") > 0


def test_user_view_reads_what_an_event_needs_in_one_go(client):
    store = StateStore(client, 60, 60, 30)
    assert store.user_view("E2", "c", "U1") == UserView(None, None, None, None)
    store.finish_event("E1", "applied", "c", "U1", 1000, "followed")
    store.cache_customer("c", "U1", 42)
    store.park("c", "U1", {"type": "follow"})
    store.cache_customer("c", "U2", 7)  # another user's entries stay out of the view
    assert store.user_view("E1", "c", "U1") == UserView(
        "applied", UserRecord(1000, "E1", "followed"), 42, {"type": "follow"})
    assert store.user_view("E2", "c", "U1").outcome is None


def test_parking_and_identity(client):
    store = StateStore(client, 60, 60, 30)
    store.park("c", "U1", {"type": "follow"})
    assert store.parked() == {"c:U1": {"type": "follow"}}
    assert store.unpark("c", "U1") == {"type": "follow"}
    assert store.unpark("c", "U1") is None
    store.remember_identity("U1", "66812345678", "Ann")
    assert store.identity_hint("U1") == {"mobile": "66812345678", "name": "Ann"}


def test_every_per_user_record_expires_after_its_retention(client):
    store = StateStore(client, 60, 60, 30, Retention(user_record=1000, identity=2000,
                                                     parked=3000))
    store.finish_event("E1", "applied", "c", "U1", 1000, "followed")
    store.remember_identity("U1", "66812345678", "Ann")
    store.park("c", "U2", {"type": "follow"})
    store.cache_customer("c", "U1", 42)
    assert 990 < client.ttl("linecap:user:c:U1") <= 1000
    assert 1990 < client.ttl("linecap:identity:U1") <= 2000
    assert 2990 < client.ttl("linecap:parked:c:U2") <= 3000
    assert all(client.ttl(key) > 0 for key in client.keys("*")), {
        key: client.ttl(key) for key in client.keys("*")}
    store.remember_identity("U1", "66899999999")  # a new identity drops the old name
    assert store.identity_hint("U1") == {"mobile": "66899999999"}


def test_follows_parked_by_an_earlier_version_move_to_expiring_keys(client):
    store = StateStore(client, 60, 60, 30, Retention(parked=3000))
    client.hset("linecap:parked", mapping={"c:U1": '{"type": "follow"}', "c:U2": "{}"})
    assert store.move_legacy_parked() == 2
    assert store.parked() == {"c:U1": {"type": "follow"}, "c:U2": {}}
    assert not client.exists("linecap:parked") and client.ttl("linecap:parked:c:U1") > 0
    assert store.move_legacy_parked() == 0


def test_retention_defaults_come_from_the_settings(client):
    from tests.helpers import make_settings

    settings = make_settings(LINECAP_USER_RECORD_TTL_SECONDS="86400",
                             LINECAP_PARKED_TTL_SECONDS="172800")
    assert Retention.from_settings(settings) == Retention(86400, 365 * 86400, 172800)
    assert Retention() == Retention.from_settings(make_settings())


def test_dead_letters_accumulate_attempts_per_event(client):
    store = DeadLetterStore(client)
    store.add("E1", "c", {"type": "follow"}, "permanent", "bad", attempts=1, first_failure_at=10)
    store.add("E1", "c", {"type": "follow"}, "permanent", "worse", attempts=2)
    store.add("E2", "c", {"type": "unfollow"}, "transient_exhausted", "5xx", attempts=9)
    assert store.count() == 2
    one = store.get("E1")
    assert (one.attempts, one.first_failure_at, one.error) == (3, 10, "worse")
    assert [d.event_id for d in store.list()] == ["E2", "E1"]
    assert store.take("E1").event_id == "E1" and store.take("E1") is None
    assert store.purge() == 1 and store.count() == 0


class RecordingCelery:
    def __init__(self, fail: bool = False):
        self.sent = []
        self.fail = fail

    def send_task(self, name, kwargs, task_id, queue, **options):
        if self.fail:
            raise ConnectionError("broker down")
        self.sent.append((name, kwargs, task_id, queue))


def test_replay_publishes_then_removes(client):
    store = DeadLetterStore(client)
    store.add("E1", "c", {"type": "follow"}, "permanent", "bad", attempts=1)
    store.add("R1", "c", {"mobile": "1"}, "permanent", "bad", attempts=1,
              task="linecap.import_user")
    celery = RecordingCelery()
    assert replay_one(store, celery, "E1")
    assert not replay_one(store, celery, "E1")
    assert celery.sent == [("linecap.process_event", {"channel_id": "c",
                            "event": {"type": "follow"}}, "E1", "line-events-bulk")]
    assert replay_all(store, celery) == 1
    assert celery.sent[-1][3] == "imports"


def test_replay_keeps_the_entry_when_the_broker_fails(client):
    store = DeadLetterStore(client)
    store.add("E1", "c", {"type": "follow"}, "permanent", "bad", attempts=1)
    with pytest.raises(ConnectionError):
        replay_one(store, RecordingCelery(fail=True), "E1")
    assert store.get("E1") is not None


def test_rate_limiter_caps_calls_in_the_window(client):
    waits = []
    limiter = SharedRateLimiter(client, 5, key="t", max_inline_wait=0, on_wait=waits.append)
    for _ in range(5):
        limiter.acquire()
    with pytest.raises(ComeBackLater) as info:
        limiter.acquire()
    assert 50 < info.value.wait_seconds <= 61
    assert waits and limiter.stats().used == 5
