"""The per-user history in Redis: in order, bounded in size and age, expiring, masked, and never
a reason for the work it describes to fail."""

from __future__ import annotations

import json
import logging

import fakeredis
import pytest

from core.store import history
from core.store.history import HistoryStore, history_key
from tests.helpers import CHANNEL_ID, new_user_id

DAY_MS = 86_400_000


@pytest.fixture
def client():
    return fakeredis.FakeRedis(decode_responses=True)


def test_entries_come_back_oldest_first_whoever_wrote_them_first(client):
    store, user = HistoryStore(client), new_user_id()
    now = history.now_ms()
    # A worker's outcome written before the replay entry that was stamped earlier.
    store.record(CHANNEL_ID, user, [history.entry(history.OUTCOME, now, outcome="applied")])
    store.record(CHANNEL_ID, user, [history.entry(history.REPLAYED, now - 5, by="me")])
    assert [e["kind"] for e in store.read(CHANNEL_ID, user)] == ["replayed", "outcome"]


def test_each_user_keeps_at_most_max_entries_the_newest(client):
    store, user = HistoryStore(client, max_entries=10), new_user_id()
    now = history.now_ms()
    for batch in range(3):
        store.record(CHANNEL_ID, user, [history.entry(history.CALL, now + batch * 10 + i, n=i)
                                        for i in range(7)])
    kept = store.read(CHANNEL_ID, user)
    assert len(kept) == 10 and client.llen(history_key(CHANNEL_ID, user)) == 10
    assert kept[-1]["at"] == now + 26 and kept[0]["at"] == now + 14


def test_entries_older_than_the_retention_are_dropped_and_the_list_expires(client):
    store, user = HistoryStore(client, ttl_seconds=86_400), new_user_id()
    now = history.now_ms()
    store.record(CHANNEL_ID, user, [history.entry(history.CALL, now - 3 * DAY_MS),
                                    history.entry(history.CALL, now - 2 * DAY_MS)])
    store.record(CHANNEL_ID, user, [history.entry(history.OUTCOME, now)])
    assert client.llen(history_key(CHANNEL_ID, user)) == 1, "pruned when written"
    assert [e["kind"] for e in store.read(CHANNEL_ID, user)] == ["outcome"]
    assert 86_000 < client.ttl(history_key(CHANNEL_ID, user)) <= 86_400


def test_an_old_entry_never_shows_even_before_a_write_prunes_it(client):
    store, user = HistoryStore(client, ttl_seconds=86_400), new_user_id()
    old = history.entry(history.CALL, history.now_ms() - 2 * DAY_MS)
    client.rpush(history_key(CHANNEL_ID, user), json.dumps(old, separators=(",", ":")))
    assert store.read(CHANNEL_ID, user) == []


def test_mobiles_are_masked_and_ids_are_not(client):
    store, user = HistoryStore(client), new_user_id()
    event_id = f"backfill-{CHANNEL_ID}-{user}-20240501"
    store.record(CHANNEL_ID, user, [history.entry(
        history.OUTCOME, event=event_id, reason="INSTORE refused mobile 66812345678",
        customer=123456789, latest_event=event_id, mobile="+66812345678")])
    stored = client.lrange(history_key(CHANNEL_ID, user), 0, -1)[0]
    assert "66812345678" not in stored and "12345678" not in stored.replace("123456789", "")
    (entry,) = store.read(CHANNEL_ID, user)
    assert entry["reason"] == "INSTORE refused mobile *******5678"
    assert entry["mobile"] == "********5678"
    assert (entry["event"], entry["latest_event"], entry["customer"]) == \
        (event_id, event_id, 123456789)


def test_only_line_user_ids_get_a_history(client):
    store = HistoryStore(client)
    for user in (None, "", "U123", "../../x"):
        assert store.record(CHANNEL_ID, user, [history.entry(history.CALL)])
    assert client.keys("linecap:history:*") == []


def test_a_failing_redis_is_logged_never_raised(caplog):
    server = fakeredis.FakeServer()
    store = HistoryStore(fakeredis.FakeRedis(server=server, decode_responses=True))
    server.connected = False
    with caplog.at_level(logging.WARNING, logger="linecap.history"):
        assert store.record(CHANNEL_ID, new_user_id(), [history.entry(history.CALL)]) is False
    assert "history not recorded: ConnectionError" in caplog.text


def test_several_users_in_one_round_trip(client):
    store = HistoryStore(client)
    users = [new_user_id() for _ in range(3)]
    assert store.record_many([(CHANNEL_ID, u, [history.entry(history.QUEUED, by="r")])
                              for u in users])
    assert all(len(store.read(CHANNEL_ID, u)) == 1 for u in users)
