"""The ops API's dead-letter actions: each replay and purge leaves an audit line."""

from __future__ import annotations

import logging

import fakeredis
import pytest

from app import create_app
from core.store.dead_letters import DeadLetterStore
from tests.helpers import CHANNEL_ID, follow_event, make_settings, new_user_id

KEY = "ops-key-0123456789abcdef"


class RecordingCelery:
    def __init__(self) -> None:
        self.sent: list[str] = []

    def send_task(self, name, kwargs, task_id, queue, **options):
        self.sent.append(task_id)


@pytest.fixture
def redis():
    return fakeredis.FakeRedis(decode_responses=True)


@pytest.fixture
def celery():
    return RecordingCelery()


@pytest.fixture
def client(redis, celery):
    app = create_app(make_settings(LINECAP_OPS_API_KEYS=KEY), publisher=object(),
                     redis_client=redis, celery_app=celery)
    return app.test_client()


def _letters(redis, n: int) -> list[str]:
    store = DeadLetterStore(redis)
    ids = []
    for _ in range(n):
        event = follow_event(new_user_id())
        store.add(event["webhookEventId"], CHANNEL_ID, event, "permanent", "bad", attempts=1)
        ids.append(event["webhookEventId"])
    return ids


def _audit_lines(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "linecap.ops"]


def test_replay_and_purge_are_logged_with_what_and_how_many(client, redis, celery, caplog):
    caplog.set_level(logging.INFO, logger="linecap.ops")
    auth = {"Authorization": f"Bearer {KEY}"}
    first, *rest = _letters(redis, 3)
    assert client.post(f"/ops/dead-letters/{first}/replay", headers=auth).status_code == 200
    assert client.delete(f"/ops/dead-letters/{rest[0]}", headers=auth).status_code == 200
    assert client.post("/ops/dead-letters/replay", headers=auth).get_json() == {"replayed": 1}
    assert celery.sent == [first, rest[1]]
    assert [(r.action, r.count, r.webhook_event_id) for r in _audit_lines(caplog)] == [
        ("replayed", 1, first), ("purged", 1, rest[0]), ("replayed", 1, None)]
    assert all(r.remote_addr == "127.0.0.1" for r in _audit_lines(caplog))
    assert KEY not in caplog.text


def test_refused_or_missing_actions_are_not_logged_as_done(client, redis, caplog):
    caplog.set_level(logging.INFO, logger="linecap.ops")
    [letter] = _letters(redis, 1)
    assert client.post(f"/ops/dead-letters/{letter}/replay").status_code == 401
    auth = {"Authorization": f"Bearer {KEY}"}
    assert client.delete("/ops/dead-letters/NOPE", headers=auth).status_code == 404
    assert client.delete("/ops/dead-letters", headers=auth).status_code == 400
    assert _audit_lines(caplog) == []


@pytest.mark.parametrize("query", ["limit=abc", "offset=abc", "limit=0", "limit=-1",
                                   "limit=1001", "offset=-5", "limit=²", "offset=١", "limit=1e3",
                                   "limit=" + "9" * 40])
def test_a_bad_page_query_is_400_with_a_message(client, redis, query):
    _letters(redis, 3)
    response = client.get(f"/ops/dead-letters?{query}",
                          headers={"Authorization": f"Bearer {KEY}"})
    assert response.status_code == 400
    name = query.split("=")[0]
    assert name in response.get_json()["message"]


def test_pages_of_dead_letters_stay_within_the_cap(client, redis):
    _letters(redis, 5)
    auth = {"Authorization": f"Bearer {KEY}"}
    page = client.get("/ops/dead-letters?limit=2&offset=1", headers=auth).get_json()
    assert page["count"] == 5 and len(page["dead_letters"]) == 2
    assert len(client.get("/ops/dead-letters", headers=auth).get_json()["dead_letters"]) == 5


def test_dead_letters_expire_and_leave_the_index(redis):
    import time

    store = DeadLetterStore(redis, ttl_seconds=86400)
    [live] = _letters(redis, 1)
    assert 0 < redis.ttl(f"linecap:dlq:{live}") <= 30 * 24 * 3600  # the default retention
    redis.zadd("linecap:dlq:index", {"OLD": time.time() - 2 * 86400})
    assert store.count() == 1 and store.ids() == [live]


def test_a_replay_goes_into_the_users_history_with_who_asked(client, redis):
    from core.store.history import HistoryStore

    user = new_user_id()
    event = follow_event(user)
    DeadLetterStore(redis).add(event["webhookEventId"], CHANNEL_ID, event, "invalid_input",
                               "POST /v2/customers: HTTP 400", attempts=2)
    response = client.post(f"/ops/dead-letters/{event['webhookEventId']}/replay",
                           headers={"Authorization": f"Bearer {KEY}"})
    assert response.status_code == 200
    [replayed] = HistoryStore(redis).read(CHANNEL_ID, user)
    assert (replayed["kind"], replayed["event"], replayed["by"], replayed["reason"]) == \
        ("replayed", event["webhookEventId"], "ops API (127.0.0.1)",
         "dead letter (invalid_input, 2 attempts)")
