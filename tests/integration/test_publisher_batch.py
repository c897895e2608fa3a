"""Publishing on a real Redis: a request is one message; a fan-out's per-event messages and
their task-sent events go out as one pipelined batch."""

from __future__ import annotations

import base64
import json

from app.publisher import CeleryEventPublisher
from core.store.connection import redis_client
from tests.helpers import follow_event, make_settings, new_event_id, new_user_id
from tests.integration.stack import wait_until
from workers.celery_app import make_celery
from workers.messages import send_events
from workers.registry import EVENT_BATCHES_QUEUE, EVENTS_QUEUE, FAN_OUT_TASK


def test_our_broker_settings_keep_kombu_batching_on(fresh_redis_db):
    """kombu quietly publishes one by one when the Redis connection may retry a command
    (a retried pipeline could push twice); this fails if a setting ever turns that on."""
    celery = make_celery(make_settings(REDIS_URL=fresh_redis_db))
    with celery.producer_or_acquire() as producer:
        assert producer.supports_batch_publish


def test_a_multi_event_request_lands_as_one_fan_out_message(fresh_redis_db):
    celery = make_celery(make_settings(REDIS_URL=fresh_redis_db))
    redis = redis_client(fresh_redis_db)
    batch = [follow_event(new_user_id(), event_id=new_event_id()) for _ in range(5)]

    CeleryEventPublisher(celery).publish("1650000001", batch)

    assert redis.llen(EVENTS_QUEUE) == 0
    [raw] = redis.lrange(EVENT_BATCHES_QUEUE, 0, -1)
    message = json.loads(raw)
    assert message["headers"]["task"] == FAN_OUT_TASK
    args, kwargs, _ = json.loads(base64.b64decode(message["body"]))
    assert kwargs == {"channel_id": "1650000001", "events": batch}


def test_a_fan_out_lands_as_one_message_and_one_task_sent_event_per_event(fresh_redis_db):
    celery = make_celery(make_settings(REDIS_URL=fresh_redis_db))
    redis = redis_client(fresh_redis_db)
    sent_events = redis.pubsub(ignore_subscribe_messages=True)
    sent_events.psubscribe("*celeryev*")
    batch = [follow_event(new_user_id(), event_id=new_event_id()) for _ in range(5)]

    send_events(celery, "1650000001", batch)

    queued = [json.loads(raw) for raw in reversed(redis.lrange(EVENTS_QUEUE, 0, -1))]
    assert [m["headers"]["id"] for m in queued] == [e["webhookEventId"] for e in batch]
    received: list[dict] = []

    def five_task_sent_events() -> bool:
        message = sent_events.get_message(timeout=0.2)
        if message is not None:
            received.append(json.loads(message["data"]))
        return len(received) == 5

    wait_until(five_task_sent_events, timeout=10, message="five task-sent events")
    assert sorted(json.loads(_body(e))["uuid"] for e in received) == sorted(
        e["webhookEventId"] for e in batch)


def _body(envelope: dict) -> str:
    """kombu wraps a fanout event as a message; its body is base64 or plain JSON."""
    body = envelope["body"]
    if envelope.get("properties", {}).get("body_encoding") == "base64":
        body = base64.b64decode(body).decode()
    return body
