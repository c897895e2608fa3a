"""What happens to an event: applied, retried with backoff, deferred, or dead-lettered.

A job that must come back later waits in Redis (the delayed-job store), not in the broker.
"""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
import redis
from celery.exceptions import Reject, SoftTimeLimitExceeded

import workers.failure_policy
from core.store.delayed_jobs import DelayedJob
from tasks.events.entry import process_event
from tests.helpers import CHANNEL_ID, follow_event, new_user_id
from workers.registry import PROCESS_EVENT_TASK, queue_for


@pytest.fixture
def runtime(make_runtime, sandbox):
    """Against an org that registers LINE-only customers: these tests are about the task's
    fate; tests/unit/tasks/events/test_apply.py covers strict orgs."""
    sandbox.lenient()
    return make_runtime(CAPILLARY_TIMEOUT_SECONDS="1", LINECAP_RETRY_HORIZON_SECONDS="3600")


def run(event, attempts=None, channel_id=CHANNEL_ID):
    """One run of the event task's job, as a worker runs the message (task id = event id)."""
    task = SimpleNamespace(request=SimpleNamespace(id=event["webhookEventId"]))
    return process_event.spec.run(task, channel_id, event, attempts)


def test_a_retry_stays_in_the_lane_it_ran_in(runtime, sandbox):
    """A back-filled or replayed event that fails comes back to the bulk lane, behind the
    live reserve, not to the live queue."""
    sandbox.faults(error_rate=1.0)
    event = follow_event(new_user_id())
    task = SimpleNamespace(request=SimpleNamespace(
        id=event["webhookEventId"], delivery_info={"routing_key": "line-events-bulk"}))
    assert process_event.spec.run(task, CHANNEL_ID, event, None) == "retried"
    job, _ = waiting(runtime, event)
    assert job.lane == "bulk"
    assert queue_for(job.task, job.lane) == "line-events-bulk"


def waiting(runtime, event) -> tuple[DelayedJob, float]:
    """The message waiting to run the event again, and the seconds until it is due."""
    found = runtime.delayed.get(event["webhookEventId"])
    assert found is not None, "the event does not wait to run again"
    job, due = found
    return job, due - time.time()


def test_follow_applies_and_a_duplicate_is_skipped(runtime, sandbox):
    event = follow_event(new_user_id())
    assert run(event) == "applied"
    assert run(event) == "duplicate"
    assert len(sandbox.customers()) == 1


def test_transient_failure_retries_with_backoff_and_counts_the_attempt(runtime, sandbox):
    sandbox.faults(error_rate=1.0)
    event = follow_event(new_user_id())
    assert run(event) == "retried"
    job, wait = waiting(runtime, event)
    assert job.task == PROCESS_EVENT_TASK and job.task_id == event["webhookEventId"]
    assert job.kwargs["event"] == event and job.kwargs["channel_id"] == CHANNEL_ID
    assert job.kwargs["attempts"]["failures"] == job.failures == 1
    assert 0 < wait <= runtime.settings.retry_max_delay_seconds


def test_a_long_retry_after_is_waited_out_in_redis(runtime, sandbox):
    sandbox.faults(retry_after_seconds=40,
                   fail_next=[{"status": 429, "path_contains": "/v2/customers", "count": 3}])
    event = follow_event(new_user_id())
    assert run(event) == "retried"
    _, wait = waiting(runtime, event)
    assert 39 <= wait <= runtime.settings.retry_max_delay_seconds


def test_a_wait_redis_cannot_take_leaves_the_message_to_the_broker(runtime, sandbox,
                                                                    monkeypatch):
    """Acknowledging a run whose wait was not recorded would lose the event: requeue it."""
    sandbox.faults(error_rate=1.0)
    monkeypatch.setattr(workers.failure_policy, "REDIS_PAUSE_SECONDS", 0)

    def redis_down(*_args, **_kwargs):
        raise redis.ConnectionError("Redis is down")

    monkeypatch.setattr(type(runtime.delayed), "defer", redis_down)
    with pytest.raises(Reject) as info:
        run(follow_event(new_user_id()))
    assert info.value.requeue is True


def test_a_dead_letter_redis_cannot_take_leaves_the_message_to_the_broker(runtime,
                                                                          monkeypatch):
    monkeypatch.setattr(workers.failure_policy, "REDIS_PAUSE_SECONDS", 0)

    def redis_down(*_args, **_kwargs):
        raise redis.ConnectionError("Redis is down")

    monkeypatch.setattr(type(runtime.dead_letters), "add", redis_down)
    with pytest.raises(Reject) as info:
        run(follow_event(new_user_id()), channel_id="no-such-channel")
    assert info.value.requeue is True


def test_transient_failure_past_the_horizon_is_dead_lettered(runtime, sandbox):
    sandbox.faults(error_rate=1.0)
    event = follow_event(new_user_id())
    old = {"failures": 40, "first_failure_at": time.time() - 3601}
    assert run(event, old) == "dead_lettered"
    letter = runtime.dead_letters.get(event["webhookEventId"])
    assert letter.error_class == "transient_exhausted" and letter.attempts == 41


def test_permanent_failure_is_dead_lettered_at_once(runtime, sandbox):
    import requests

    requests.post(sandbox.url + "/sandbox/accounts", json={"valid_accounts": ["other"]},
                  timeout=5).raise_for_status()
    event = follow_event(new_user_id())
    assert run(event) == "dead_lettered"
    letter = runtime.dead_letters.get(event["webhookEventId"])
    assert letter.error_class == "configuration" and letter.attempts == 1
    assert letter.event == event and letter.channel_id == CHANNEL_ID


def test_a_run_past_its_time_limit_is_a_failure_that_comes_back(runtime, monkeypatch):
    def too_slow(*_args, **_kwargs):
        raise SoftTimeLimitExceeded()

    monkeypatch.setattr(type(runtime.capillary), "lookup", too_slow)
    event = follow_event(new_user_id())
    assert run(event) == "retried"
    job, _ = waiting(runtime, event)
    assert job.failures == 1


def test_a_time_limit_while_the_wait_is_recorded_keeps_the_message(runtime, sandbox,
                                                                   monkeypatch):
    sandbox.faults(error_rate=1.0)

    def limit_strikes(*_args, **_kwargs):
        raise SoftTimeLimitExceeded()

    monkeypatch.setattr(type(runtime.delayed), "defer", limit_strikes)
    with pytest.raises(Reject) as info:
        run(follow_event(new_user_id()))
    assert info.value.requeue is True


def test_busy_user_is_deferred_without_counting_a_failure(runtime):
    user = new_user_id()
    event = follow_event(user)
    with runtime.state.user_lock(CHANNEL_ID, user):
        assert run(event, {"failures": 2, "first_failure_at": 1.0}) == "retried"
    job, wait = waiting(runtime, event)
    assert job.kwargs["attempts"] == {"failures": 2, "first_failure_at": 1.0}
    assert 0 < wait <= 6


def test_exhausted_budget_is_deferred_not_failed(runtime, fake_redis):
    runtime.limiter.limit = 1
    runtime.limiter.try_acquire()
    event = follow_event(new_user_id())
    assert run(event) == "retried"
    job, wait = waiting(runtime, event)
    assert job.kwargs["attempts"]["failures"] == 0
    assert 50 < wait <= 63  # until the budget's oldest call leaves the 61 s window


def test_unknown_channel_is_a_configuration_dead_letter(runtime):
    event = follow_event(new_user_id())
    result = run(event, channel_id="no-such-channel")
    assert result == "dead_lettered"


def test_re_running_after_a_crash_between_registrations_makes_one_customer(runtime, sandbox):
    """INSTORE registered, then the task died: the re-run finds it and attaches LINE."""
    user = new_user_id()
    sandbox.faults(fail_next=[{"status": 503, "path_contains": "/v2/customers",
                               "method": "POST", "count": 3, "after_write": True}])
    assert run(follow_event(user, event_id="EVT-CRASH")) == "retried"
    assert len(sandbox.customers()) == 1
    assert run(follow_event(user, event_id="EVT-CRASH")) == "applied"
    [customer] = sandbox.customers()
    assert sorted(p["source"] for p in customer["profiles"]) == ["INSTORE", "LINE"]
