import json

import fakeredis
import pytest

from app import create_app
from app.publisher import BrokerUnavailable
from tests.helpers import (
    CHANNEL_ID,
    CHUNKED,
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


# -- hostile input: a clear 4xx, or the bad event dropped; never a 500 -----------------------
def nested(depth: int) -> list:
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


def signed_raw(raw: bytes, secret: str | None = None) -> dict:
    from core.line.signature import sign
    from tests.helpers import CHANNEL_SECRET

    return {"x-line-signature": sign(raw, secret or CHANNEL_SECRET)}


@pytest.mark.parametrize("raw,reason", [
    (b'{"events": [' * 2000 + b"]}" * 2000, "nested deeper"),  # past the parser's recursion
    (json.dumps({"events": [{"type": "follow", "x": nested(40)}]}).encode(), "nested deeper"),
    (b'{"events": [], "x": NaN}', "NaN is not a JSON value"),
    (b'{"events": [{"timestamp": Infinity}]}', "Infinity is not a JSON value"),
    (b'{"events": [{"timestamp": -Infinity}]}', "-Infinity is not a JSON value"),
    (b'{"events": [], "n": 1' + b"0" * 5000 + b"}", "not JSON"),  # past int's digit limit
])
def test_hostile_json_is_400_with_the_reason(client, publisher, raw, reason):
    response = client.post(f"/webhooks/line/{CHANNEL_ID}", data=raw, headers=signed_raw(raw))
    assert response.status_code == 400
    assert reason in response.get_json()["message"]
    assert publisher.published == []


def test_more_events_than_the_limit_is_400(publisher):
    app = create_app(make_settings(LINECAP_WEBHOOK_MAX_EVENTS="3"), publisher=publisher,
                     redis_client=fakeredis.FakeRedis())
    web = app.test_client()
    assert post(web, [follow_event(new_user_id()) for _ in range(3)]).status_code == 200
    response = post(web, [follow_event(new_user_id()) for _ in range(4)])
    assert response.status_code == 400 and "at most 3" in response.get_json()["message"]
    assert len(publisher.published) == 3


def test_a_chunked_body_over_the_limit_is_413_and_never_verified(client, publisher):
    """werkzeug cuts a chunked body at the limit without saying so; a body signed over its
    first MiB must not pass as the whole request."""
    import io

    limit = 1024 * 1024
    head = json.dumps({"events": [follow_event(new_user_id())], "pad": ""}).encode()
    cut = head[:-2] + b" " * (limit - len(head)) + b'"}'  # exactly the limit: a valid body
    assert len(cut) == limit
    headers = signed_raw(cut)

    def chunked(data: bytes):
        return client.post(f"/webhooks/line/{CHANNEL_ID}", input_stream=io.BytesIO(data),
                           headers=headers, environ_overrides=CHUNKED)

    assert chunked(cut + b"more bytes after the signed part").status_code == 413
    assert publisher.published == []
    assert chunked(cut).status_code == 200  # a chunked body of exactly the limit is fine
    assert len(publisher.published) == 1


def valid_follow(**changes) -> dict:
    event = follow_event(new_user_id())
    for key, value in changes.items():
        if value is KeyError:
            event.pop(key)
        else:
            event[key] = value
    return event


@pytest.mark.parametrize("changes", [
    {"source": {"type": "user", "userId": "../../v2/bot/info"}},
    {"source": {"type": "user", "userId": "U" + "A" * 32}},
    {"source": {"type": "user", "userId": "U" + "a" * 10_000}},
    {"source": {"type": "group", "groupId": "C1"}},
    {"source": KeyError},
    {"timestamp": 1e30}, {"timestamp": 10**30}, {"timestamp": 1_700_000_000},  # seconds
    {"timestamp": "1700000000000"}, {"timestamp": True}, {"timestamp": KeyError},
    {"timestamp": int(__import__("time").time() * 1000) + 3600_000},  # an hour ahead
    {"webhookEventId": "x" * 65}, {"webhookEventId": "../../x"}, {"webhookEventId": 7},
])
def test_a_handled_event_with_bad_fields_is_dropped_and_the_rest_queued(client, publisher,
                                                                         caplog, changes):
    good = follow_event(new_user_id())
    with caplog.at_level("WARNING", logger="linecap.webhook"):
        response = post(client, [valid_follow(**changes), good])
    assert response.status_code == 200
    assert [e["webhookEventId"] for _, e in publisher.published] == [good["webhookEventId"]]
    assert any(r.getMessage().startswith("event dropped:") for r in caplog.records)


@pytest.mark.parametrize("link,source", [
    ({"result": "ok", "nonce": "short"}, True), ({"result": "ok", "nonce": "n" * 256}, True),
    ({"result": "maybe", "nonce": "n" * 20}, True), ({"result": "ok", "nonce": "n" * 20}, False),
    ({"result": "ok", "nonce": "ñ" * 20}, True), ("not an object", True),
])
def test_a_bad_account_link_event_is_dropped(client, publisher, link, source):
    from sandboxes.line.events import make_account_link_event

    event = make_account_link_event(new_user_id(), "n" * 20, "ok")
    event["link"] = link
    if not source:
        event.pop("source")
    assert post(client, [event]).status_code == 200
    assert publisher.published == []


def test_a_failed_account_link_without_source_is_queued(client, publisher):
    from sandboxes.line.events import make_account_link_event

    event = make_account_link_event(new_user_id(), "n" * 20, "failed")
    assert post(client, [event]).status_code == 200
    [(_, queued)] = publisher.published
    assert queued["link"] == {"result": "failed", "nonce": "n" * 20} and "source" not in queued


def test_only_the_fields_linecap_reads_are_queued(client, publisher):
    event = follow_event(new_user_id())
    event["extra"] = "x" * 100_000
    event["source"]["extra"] = {"deep": [1, 2, 3]}
    event["follow"]["new"] = "field"
    assert post(client, [event]).status_code == 200
    [(_, queued)] = publisher.published
    assert queued == {"type": "follow", "mode": "active", "timestamp": event["timestamp"],
                      "webhookEventId": event["webhookEventId"],
                      "source": {"type": "user", "userId": event["source"]["userId"]},
                      "deliveryContext": {"isRedelivery": False},
                      "follow": {"isUnblocked": False}}


def test_the_previous_secret_is_accepted_during_a_rotation(publisher, caplog):
    channels = json.loads(channels_json())
    channels[0]["channel_secret"] = "the-new-secret-0123456789abcdef"
    channels[0]["previous_channel_secret"] = "the-old-secret-0123456789abcdef"
    app = create_app(make_settings(LINE_CHANNELS=json.dumps(channels)), publisher=publisher,
                     redis_client=fakeredis.FakeRedis())
    web = app.test_client()
    with caplog.at_level("INFO", logger="linecap.webhook"):
        assert post(web, [follow_event(new_user_id())],
                    secret="the-new-secret-0123456789abcdef").status_code == 200
        assert not any("previous" in r.getMessage() for r in caplog.records)
        assert post(web, [follow_event(new_user_id())],
                    secret="the-old-secret-0123456789abcdef").status_code == 200
        assert any("previous channel secret" in r.getMessage() for r in caplog.records)
    assert post(web, [follow_event(new_user_id())],
                secret="a-third-secret-0123456789abcdef").status_code == 401
    assert len(publisher.published) == 2
    assert "the-old-secret" not in caplog.text


def test_the_single_channel_shorthand_takes_a_previous_secret():
    from tests.helpers import base_env

    env = base_env(LINE_CHANNELS="", LINE_CHANNEL_ID="42", LINE_CHANNEL_SECRET="new-secret",
                   LINE_CHANNEL_ACCESS_TOKEN="token", LINE_SOURCE_ACCOUNT_ID="acc",
                   LINE_CHANNEL_PREVIOUS_SECRET="old-secret")
    from config import load_settings

    channel = load_settings(env).channel("42")
    assert channel.channel_secrets == ("new-secret", "old-secret")
    assert "old-secret" not in repr(channel)


# -- X-Forwarded-* -------------------------------------------------------------------------
def link_page_url(hops: str, headers: dict) -> tuple[str, str]:
    from tests.unit.app.test_linking import AUTH, KEY, FakeLineApi, RecordingCelery

    settings = make_settings(LINECAP_API_KEYS=KEY, LINECAP_FORWARDED_HOPS=hops)
    app = create_app(settings, publisher=object(),
                     redis_client=fakeredis.FakeRedis(decode_responses=True),
                     celery_app=RecordingCelery())
    app.extensions["linecap.line_api"] = FakeLineApi()
    seen = {}

    @app.get("/whoami")
    def whoami():
        from flask import request

        seen["addr"] = request.remote_addr
        return {}

    web = app.test_client()
    web.get("/whoami", headers=headers)
    response = web.post("/api/v1/link-tokens", headers={**AUTH, **headers},
                        json={"channel": CHANNEL_ID, "line_user_id": new_user_id()})
    return response.get_json()["link_page_url"], seen["addr"]


SPOOFED = {"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https",
           "X-Forwarded-For": "203.0.113.9"}


def test_forwarded_headers_are_ignored_unless_a_proxy_is_configured():
    url, addr = link_page_url("0", SPOOFED)
    assert url.startswith("http://localhost/link/") and addr == "127.0.0.1"


def test_behind_one_proxy_only_for_and_proto_are_believed():
    url, addr = link_page_url("1", SPOOFED)
    assert url.startswith("https://localhost/link/") and addr == "203.0.113.9"
    assert "evil.example" not in url
