"""The ops API's answers about users and the reconciliation: keyed, checked, logged."""

from __future__ import annotations

import logging

import fakeredis
import pytest

from app import create_app
from core.store import history
from core.store.history import HistoryStore
from core.store.reconciliation import ReconciliationStore, Run
from core.store.state import StateStore
from tests.helpers import CHANNEL_ID, make_settings, new_user_id

KEY = "ops-key-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture
def redis():
    return fakeredis.FakeRedis(decode_responses=True)


@pytest.fixture
def client(redis):
    app = create_app(make_settings(LINECAP_OPS_API_KEYS=KEY), publisher=object(),
                     redis_client=redis, celery_app=object())
    return app.test_client()


def test_a_users_history_with_the_answer_to_why(client, redis, caplog):
    user = new_user_id()
    StateStore(redis, 60, 60, 30).finish_event("E2", "applied", CHANNEL_ID, user,
                                               1_700_000_002_000, "unfollowed")
    HistoryStore(redis).record(CHANNEL_ID, user, [
        history.entry(history.RECEIVED, event="E2", type="unfollow", queue="line-events",
                      timestamp=1_700_000_002_000, redelivery=False),
        history.entry(history.OUTCOME, event="E2", type="unfollow", outcome="applied",
                      attempt=1, reason="set to OPTOUT")])
    caplog.set_level(logging.INFO, logger="linecap.ops")
    response = client.get(f"/ops/users/{CHANNEL_ID}/{user}", headers=AUTH)
    assert response.status_code == 200
    body = response.get_json()
    assert body["state"]["state"] == "unfollowed" and body["state"]["last_event"] == "E2"
    assert [e["kind"] for e in body["entries"]] == ["received", "outcome"]
    assert body["entries"][1]["text"] == "applied (attempt 1): set to OPTOUT"
    assert body["explanation"].startswith("not opted in because: unfollow E2 applied at ")
    assert body["retention_seconds"] == 30 * 86400
    [audit] = [r for r in caplog.records if r.name == "linecap.ops"]
    assert audit.getMessage() == "user history read through the ops API"
    assert (audit.channel, audit.user_id, audit.entries) == (CHANNEL_ID, user, 2)


def test_a_user_nobody_heard_of_has_an_empty_history_and_an_answer(client):
    body = client.get(f"/ops/users/{CHANNEL_ID}/{new_user_id()}", headers=AUTH).get_json()
    assert body["entries"] == [] and body["state"] is None
    assert "no event from this user reached linecap" in body["explanation"]


@pytest.mark.parametrize(("path", "status"), [
    (f"/ops/users/999/{'U' + '0' * 32}", 404),
    (f"/ops/users/{CHANNEL_ID}/U123", 400),
    (f"/ops/users/{CHANNEL_ID}/{'U' + 'A' * 32}", 400),
])
def test_unknown_channels_and_malformed_users_are_refused(client, path, status):
    assert client.get(path, headers=AUTH).status_code == status


@pytest.mark.parametrize("path", [f"/ops/users/{CHANNEL_ID}/{'U' + '0' * 32}",
                                  "/ops/reconciliation"])
def test_without_the_key_nothing_is_shown(client, path):
    assert client.get(path).status_code == 401
    assert client.get(path, headers={"Authorization": "Bearer wrong-key-0123456789"}
                      ).status_code == 401


def test_each_channels_last_run_and_the_one_in_progress(client, redis):
    store = ReconciliationStore(redis, 3600)
    done = Run.new(CHANNEL_ID, "schedule", False)
    done.counts = {"followers": 3, "drift": 1}
    store.finish(done, done.summary("completed"))
    running = Run.new(CHANNEL_ID, "cli", False)
    running.cursor = "line-cursor"
    assert store.start(running)
    body = client.get("/ops/reconciliation", headers=AUTH).get_json()
    channel = body["channels"][CHANNEL_ID]
    assert channel["interval_seconds"] == 86400 and body["repair_missing"] is False
    assert channel["last"]["run_id"] == done.run_id and channel["last"]["counts"]["drift"] == 1
    assert channel["running"]["run_id"] == running.run_id
    assert "cursor" not in channel["running"], "LINE's cursor stays inside"
