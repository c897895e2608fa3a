import json

import fakeredis
import pytest

from app import create_app
from app.publisher import BrokerUnavailable
from tests.helpers import (
    CHANNEL_ID,
    channels_json,
    follow_event,
    make_settings,
    new_user_id,
    signed_body,
)


class RecordingPublisher:
    def __init__(self, fail: bool = False) -> None:
        self.published: list[tuple[str, dict]] = []
        self.fail = fail

    def publish(self, channel_id, batch):
        if self.fail:
            raise BrokerUnavailable("ConnectionError")
        self.published.extend((channel_id, e) for e in batch)


@pytest.fixture
def publisher():
    return RecordingPublisher()


@pytest.fixture
def client(publisher):
    app = create_app(make_settings(), publisher=publisher,
                     redis_client=fakeredis.FakeRedis(decode_responses=True))
    return app.test_client()


def post(client, events, secret=None, path=f"/webhooks/line/{CHANNEL_ID}"):
    body, headers = signed_body(events, **({"secret": secret} if secret else {}))
    return client.post(path, data=body, headers=headers)


def test_follow_is_enqueued_and_acknowledged(client, publisher):
    event = follow_event(new_user_id())
    response = post(client, [event])
    assert response.status_code == 200 and response.get_json() == {}
    [(channel, queued)] = publisher.published
    assert channel == CHANNEL_ID
    assert "replyToken" in event and "replyToken" not in queued
    assert queued == {k: v for k, v in event.items() if k != "replyToken"}


def test_console_verify_with_no_events_gets_200(client, publisher):
    assert post(client, []).status_code == 200
    assert publisher.published == []


def test_default_path_works_with_one_channel(client, publisher):
    assert post(client, [follow_event(new_user_id())], path="/webhooks/line").status_code == 200
    assert len(publisher.published) == 1


def test_default_path_is_404_with_several_channels(publisher):
    second = {"name": "b", "channel_id": "2", "channel_secret": "x", "access_token": "y",
              "source_account_id": "z"}
    app = create_app(make_settings(LINE_CHANNELS=channels_json(second)), publisher=publisher,
                     redis_client=fakeredis.FakeRedis())
    assert post(app.test_client(), [], path="/webhooks/line").status_code == 404


def test_bad_signature_refused_and_nothing_enqueued(client, publisher):
    response = post(client, [follow_event(new_user_id())], secret="wrong-secret")
    assert response.status_code == 401
    assert publisher.published == []


def test_missing_signature_refused(client, publisher):
    response = client.post(f"/webhooks/line/{CHANNEL_ID}", data=b'{"events":[]}')
    assert response.status_code == 401


def test_signature_header_read_case_insensitively(client, publisher):
    body, headers = signed_body([follow_event(new_user_id())])
    response = client.post(f"/webhooks/line/{CHANNEL_ID}", data=body,
                           headers={"X-LINE-SIGNATURE": headers["x-line-signature"]})
    assert response.status_code == 200


def test_unknown_channel_is_404(client):
    assert post(client, [], path="/webhooks/line/999").status_code == 404


@pytest.mark.parametrize("raw", [b"not json", b"[]", b'{"events": {}}', b'{"events": [1]}',
                                 b'{"destination": "U1"}', b"\xff\xfe"])
def test_malformed_signed_body_is_400(client, publisher, raw):
    from core.line.signature import sign
    from tests.helpers import CHANNEL_SECRET

    response = client.post(f"/webhooks/line/{CHANNEL_ID}", data=raw,
                           headers={"x-line-signature": sign(raw, CHANNEL_SECRET)})
    assert response.status_code == 400
    assert publisher.published == []


def test_oversized_body_is_413(client, publisher):
    body = json.dumps({"events": [], "pad": "x" * (1024 * 1024)}).encode()
    response = client.post(f"/webhooks/line/{CHANNEL_ID}", data=body,
                           headers={"x-line-signature": "irrelevant"})
    assert response.status_code == 413
    assert publisher.published == []


def test_unknown_event_type_acknowledged_not_enqueued(client, publisher, caplog):
    message = {"type": "message", "webhookEventId": "01MSG", "timestamp": 1,
               "source": {"type": "user", "userId": new_user_id()}, "message": {"text": "hi"}}
    future = {"type": "somethingNew", "webhookEventId": "01NEW", "timestamp": 1}
    follow = follow_event(new_user_id())
    with caplog.at_level("INFO", logger="linecap.webhook"):
        response = post(client, [message, future, follow])
    assert response.status_code == 200
    assert [e["webhookEventId"] for _, e in publisher.published] == [follow["webhookEventId"]]
    logged = {getattr(r, "event_type", None) for r in caplog.records}
    assert {"message", "somethingNew"} <= logged


def test_broker_outage_is_503_so_line_redelivers(publisher):
    failing = RecordingPublisher(fail=True)
    app = create_app(make_settings(), publisher=failing, redis_client=fakeredis.FakeRedis())
    response = post(app.test_client(), [follow_event(new_user_id())])
    assert response.status_code == 503


def test_health_and_readiness(client):
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").get_json()["redis"] == "ok"


def test_readiness_fails_when_redis_is_down(publisher):
    from core.store.connection import redis_client

    dead = redis_client("redis://127.0.0.1:1/0", fail_fast=True)
    app = create_app(make_settings(), publisher=publisher, redis_client=dead)
    assert app.test_client().get("/readyz").status_code == 503
