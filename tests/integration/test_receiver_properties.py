"""Property-based test of the receiver: whatever arrives (any bytes, JSON of any shape, LINE
events with any field replaced, signed with the secret, the previous one, a wrong one or not at
all, any headers, chunked or not), the answer is never a 5xx, nothing unverified or invalid is
queued, and Redis holds only the queues, with bounded messages.

The app runs in-process (Flask's test client, so a chunked body can be sent as werkzeug's
servers present it) over a real Redis and Celery's real publisher.
"""

from __future__ import annotations

import base64
import io
import json
import time

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from app import create_app
from app.publisher import CeleryEventPublisher
from core.line import events as line_events
from core.line.signature import sign, verify_any
from core.store.connection import redis_client
from sandboxes.line.events import make_account_link_event, make_follow_event, make_unfollow_event
from tests.helpers import CHANNEL_ID, CHUNKED, channels_json, make_settings
from tests.integration.conftest import clean_database
from workers.celery_app import make_celery
from workers.registry import EVENT_BATCHES_QUEUE, EVENTS_QUEUE

SECRET, PREVIOUS = "current-secret-0123456789abcdef", "previous-secret-0123456789abcde"
MAX_BODY, MAX_EVENTS = 16 * 1024, 20
ALLOWED_KEYS = {EVENTS_QUEUE, EVENT_BATCHES_QUEUE}
OWN_DB = 14  # see tests/integration/conftest.py


@pytest.fixture(scope="module")
def receiver(redis_url):
    url = clean_database(redis_url, OWN_DB)
    channels = json.loads(channels_json())
    channels[0].update(channel_secret=SECRET, previous_channel_secret=PREVIOUS)
    config = make_settings(REDIS_URL=url, LINE_CHANNELS=json.dumps(channels),
                           LINECAP_WEBHOOK_MAX_BODY_BYTES=str(MAX_BODY),
                           LINECAP_WEBHOOK_MAX_EVENTS=str(MAX_EVENTS))
    redis = redis_client(url)
    celery = make_celery(config)
    app = create_app(config, publisher=CeleryEventPublisher(celery, probe=redis.ping),
                     redis_client=redis, celery_app=celery)
    yield app.test_client(), redis
    celery.close()


HOSTILE = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
    st.text(max_size=40), st.just("../../v2/bot/info"), st.just("U" + "a" * 32),
    st.just(10**30), st.just(1e30), st.just(1_700_000_000), st.just(-1),
    st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=5), st.integers(),
                                                          max_size=3))
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=30)


@st.composite
def line_event(draw) -> dict:
    user = "U" + draw(st.text("0123456789abcdef", min_size=32, max_size=32))
    kind = draw(st.sampled_from(["follow", "unfollow", "accountLink", "message", "x"]))
    if kind == "follow":
        event = make_follow_event(user)
    elif kind == "unfollow":
        event = make_unfollow_event(user)
    else:
        event = make_account_link_event(user, draw(st.text(min_size=0, max_size=300)),
                                        draw(st.sampled_from(["ok", "failed"])))
        event["type"] = kind
    for _ in range(draw(st.integers(0, 3))):
        field = draw(st.sampled_from(["type", "timestamp", "source", "webhookEventId", "link",
                                      "follow", "mode", "deliveryContext", "replyToken", "x"]))
        if draw(st.booleans()):
            event.pop(field, None)
        else:
            event[field] = draw(HOSTILE | JSON)
    if draw(st.booleans()) and isinstance(event.get("source"), dict):
        event["source"]["userId"] = draw(HOSTILE)
    return event


def nested(depth: int) -> bytes:
    return b'{"events": [' + b"[" * depth + b"]" * depth + b"]}"


BODIES = st.one_of(
    st.binary(max_size=2000),
    JSON.map(lambda value: json.dumps(value).encode()),
    st.lists(line_event(), max_size=MAX_EVENTS + 5).map(
        lambda batch: json.dumps({"destination": "U" + "0" * 32, "events": batch}).encode()),
    st.integers(1, 5000).map(nested),
    st.sampled_from([b'{"events": [], "x": NaN}', b'{"events": [{"timestamp": Infinity}]}',
                     b'{"events": ' + b"[1]" * 10 + b"}"]),
    st.integers(MAX_BODY - 10, MAX_BODY + 10).map(
        lambda size: b'{"events": [], "pad": "' + b"x" * max(size - 27, 0) + b'"}'),
)
HEADER_NAMES = st.sampled_from(["X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto",
                                "Content-Type", "X-Line-Signature", "Authorization", "X-Other"])
HEADERS = st.dictionaries(HEADER_NAMES, st.text(st.characters(min_codepoint=32,
                                                              max_codepoint=126), max_size=60),
                          max_size=4)


def queued(redis) -> list[dict]:
    """Every event in the queues, decoded as a worker would."""
    found = []
    for queue in (EVENTS_QUEUE, EVENT_BATCHES_QUEUE):
        for raw in redis.lrange(queue, 0, -1):
            assert len(raw) < 64 * 1024, "a message's size is bounded"
            message = json.loads(raw)
            _args, kwargs, _embed = json.loads(base64.b64decode(message["body"]))
            assert len(message["headers"].get("kwargsrepr", "")) < 200
            found += kwargs["events"] if "events" in kwargs else [kwargs["event"]]
    return found


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(body=BODIES, signer=st.sampled_from(["current", "previous", "wrong", "none", "header",
                                           "first-part"]),
       headers=HEADERS, chunked=st.booleans())
@example(body=json.dumps({"events": [make_follow_event("U" + "a" * 32)], "pad": "x" * MAX_BODY}
                        ).encode(), signer="first-part", headers={}, chunked=True)
def test_the_receiver_never_fails_and_queues_only_verified_valid_events(receiver, body, signer,
                                                                        headers, chunked):
    client, redis = receiver
    redis.delete(EVENTS_QUEUE, EVENT_BATCHES_QUEUE)
    headers = dict(headers)
    if signer in ("current", "previous", "wrong"):
        key = {"current": SECRET, "previous": PREVIOUS, "wrong": "not-the-secret"}[signer]
        headers["X-Line-Signature"] = sign(body, key)
    elif signer == "first-part":  # signed over what a cut body would be
        headers["X-Line-Signature"] = sign(body[:MAX_BODY], SECRET)
    elif signer == "none":
        headers.pop("X-Line-Signature", None)
    path = f"/webhooks/line/{CHANNEL_ID}"
    if chunked:
        response = client.post(path, input_stream=io.BytesIO(body), headers=headers,
                               environ_overrides=CHUNKED)
    else:
        response = client.post(path, data=body, headers=headers)

    assert response.status_code < 500, response.data
    verified = len(body) <= MAX_BODY and verify_any(
        body, headers.get("X-Line-Signature"), (SECRET, PREVIOUS))
    if len(body) > MAX_BODY:
        assert response.status_code == 413
    elif not verified:
        assert response.status_code == 401
    found = queued(redis)
    if response.status_code != 200:
        assert found == []
        return
    assert verified
    now = int(time.time() * 1000)
    for event in found:
        assert line_events.event_problem(event, now) is None, event
        assert event == line_events.for_queue(event)  # only the fields linecap reads
    sent = json.loads(body)["events"]
    valid = [e for e in sent if line_events.event_type(e) in line_events.HANDLED_EVENT_TYPES
             and line_events.event_problem(e, now) is None]
    assert [e.get("webhookEventId") for e in found] == [e.get("webhookEventId") for e in valid]
    keys = {key for key in redis.keys("*") if not key.startswith("_kombu.binding.")}
    assert keys <= ALLOWED_KEYS, keys
