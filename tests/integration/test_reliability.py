"""Exactly-once effect under at-least-once delivery, shown on real processes.

Each test runs its own system (Redis, sandboxes, gunicorn, Celery worker) so it can kill,
restart and reconfigure parts of it.
"""

from __future__ import annotations

import os

import requests

from cli.localstack.embedded_redis import EmbeddedRedis
from core.store.connection import redis_client
from core.store.state import StateStore
from tests.helpers import CHANNEL_ID, follow_event, make_settings, new_user_id
from tests.integration.effects import (
    calls_about,
    line_status,
    registrations,
    settle,
    subscription_posts,
)
from tests.integration.stack import Proc, Stack, dump, wait_until
from workers.celery_app import make_celery
from workers.messages import send_fan_out

OPS_KEY = "ops-key-for-tests-0123456789"
# Shorter backoffs than shipped, so that retried events settle within a test's waits; the
# visibility timeout and lock lease are the shipped ones (crash recovery depends on them).
FAST_RETRIES = {
    "LINECAP_RETRY_MAX_DELAY_SECONDS": "3",
    "LINECAP_OPS_API_KEYS": OPS_KEY,
}


def follow_stopped_between_registrations(fresh_stack) -> tuple[Stack, Proc, str]:
    """A slow Capillary and one worker, caught after INSTORE is registered and before LINE."""
    stack = fresh_stack(**FAST_RETRIES)
    stack.start_web()
    worker = stack.start_worker(concurrency=1)
    user = new_user_id()
    stack.faults(latency_ms=2500)
    stack.send([follow_event(user)])
    wait_until(lambda: registrations(calls_about(stack, user)) == ["INSTORE"], 20,
               message="INSTORE registered")
    return stack, worker, user


def test_same_event_three_times_applies_once(fresh_stack):
    stack = fresh_stack(**FAST_RETRIES)
    stack.start_web()
    stack.start_worker(concurrency=3)
    user = new_user_id()
    event = follow_event(user)
    for redelivery in (False, True, True):
        event = {**event, "deliveryContext": {"isRedelivery": redelivery}}
        assert stack.send([event]).status_code == 200
    customers = settle(stack, user, "OPTIN")
    assert len(customers) == 1, dump(customers)
    calls = calls_about(stack, user, customers[0]["id"])
    assert registrations(calls) == ["INSTORE", "LINE"]
    assert len(subscription_posts(calls)) == 1, dump(calls)


def test_fan_out_run_twice_applies_each_event_once(fresh_stack):
    """A worker that dies after a fan-out published its events gets the fan-out again (acks
    late) and publishes them again; the copies must change nothing."""

    stack = fresh_stack(**FAST_RETRIES)
    stack.start_worker(concurrency=3)
    users = [new_user_id() for _ in range(3)]
    batch = [follow_event(user) for user in users]
    celery = make_celery(make_settings(REDIS_URL=stack.redis_url))
    for _ in range(2):
        send_fan_out(celery, CHANNEL_ID, batch)
    for user in users:
        customers = settle(stack, user, "OPTIN")
        assert len(customers) == 1, dump(customers)
        calls = calls_about(stack, user, customers[0]["id"])
        assert registrations(calls) == ["INSTORE", "LINE"]
        assert len(subscription_posts(calls)) == 1, dump(calls)


def test_reverse_order_ends_in_latest_state(fresh_stack):
    stack = fresh_stack(**FAST_RETRIES)
    stack.start_web()
    stack.start_worker(concurrency=3)
    user = new_user_id()
    base = 1_700_000_000_000
    first = follow_event(user, timestamp=base)
    block = follow_event(user, timestamp=base + 1000, kind="unfollow")
    again = follow_event(user, timestamp=base + 2000)
    for event in (again, block, first):
        assert stack.send([event]).status_code == 200
    customers = settle(stack, user, "OPTIN")
    assert len(customers) == 1

    # And the other way round: a newer unfollow wins over an older follow in the same batch.
    # Two workers may pick them up in either order; either way the user must not end opted in.
    user2 = new_user_id()
    batch = [follow_event(user2, timestamp=base + 5000, kind="unfollow"),
             follow_event(user2, timestamp=base + 4000)]
    assert stack.send(batch).status_code == 200
    state = StateStore(redis_client(stack.redis_url), 60, 60, 60)
    wait_until(lambda: all(state.outcome_of(e["webhookEventId"]) for e in batch), 20,
               message="both events finished")
    assert line_status(stack, user2) in (None, "OPTOUT")


def test_pool_process_killed_mid_registration_recovers(fresh_stack):
    """SIGKILL of the child running the task: Celery requeues it at once (reject on lost)."""
    stack, worker, user = follow_stopped_between_registrations(fresh_stack)
    children = _children(worker.popen.pid)
    assert children, "prefork pool child not found"
    for pid in children:
        os.kill(pid, 9)
    stack.faults(latency_ms=0)
    customers = settle(stack, user, "OPTIN", timeout=60)
    assert len(customers) == 1, dump(customers)
    assert {p["source"] for p in customers[0]["profiles"]} == {"INSTORE", "LINE"}


def test_redis_restart_with_queued_events_loses_none(tmp_path):
    redis_server = EmbeddedRedis(tmp_path / "redis", appendfsync="always").start()
    stack = Stack(redis_server.url, tmp_path, **FAST_RETRIES)
    try:
        stack.start_sandboxes()
        stack.start_web()
        users = [new_user_id() for _ in range(20)]
        for user in users:
            assert stack.send([follow_event(user)]).status_code == 200
        redis_server.kill()  # hard stop: only what AOF (fsync always) kept survives
        down = stack.send([follow_event(new_user_id())])
        assert down.status_code == 503, "a follow that was not stored must not get a 200"
        redis_server.start()
        late = new_user_id()
        wait_until(lambda: stack.send([follow_event(late)]).status_code == 200, 20,
                   message="receiver reconnects")
        users.append(late)
        stack.start_worker(concurrency=4)
        wait_until(lambda: all(line_status(stack, u) == "OPTIN" for u in users), 60,
                   message="every queued follow applied")
        assert all(len(stack.customers_with(u)) == 1 for u in users)
    finally:
        stack.stop()
        redis_server.stop()


def test_permanent_error_dead_letters_then_replay_applies(fresh_stack):
    stack = fresh_stack(**FAST_RETRIES)
    stack.start_web()
    stack.start_worker()
    requests.post(stack.capillary_url + "/sandbox/accounts",
                  json={"valid_accounts": ["some-other-account"]}, timeout=5).raise_for_status()
    user = new_user_id()
    event = follow_event(user)
    stack.send([event])
    headers = {"Authorization": f"Bearer {OPS_KEY}"}
    url = f"{stack.web_url}/ops/dead-letters/{event['webhookEventId']}"
    letter = wait_until(lambda: requests.get(url, headers=headers, timeout=5).json()
                        if requests.get(url, headers=headers, timeout=5).ok else None,
                        30, message="dead letter")
    assert letter["error_class"] == "configuration"
    assert letter["channel_id"] and letter["event"]["source"]["userId"] == user
    assert requests.get(url, timeout=5).status_code == 401
    # The operator fixes the source account in InTouch, then replays.
    requests.post(stack.capillary_url + "/sandbox/accounts",
                  json={"valid_accounts": None}, timeout=5).raise_for_status()
    replay = requests.post(url + "/replay", headers=headers, timeout=5)
    assert replay.json() == {"replayed": 1}
    assert requests.post(url + "/replay", headers=headers, timeout=5).status_code == 404
    customers = settle(stack, user, "OPTIN")
    assert len(customers) == 1
    assert {p["source"] for p in customers[0]["profiles"]} == {"INSTORE", "LINE"}


def _children(pid: int) -> list[int]:
    path = f"/proc/{pid}/task/{pid}/children"
    with open(path) as handle:
        return [int(p) for p in handle.read().split()]
