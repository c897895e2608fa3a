"""What happens to an event: applied, retried with backoff, deferred, or dead-lettered."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

from tasks.events.entry import process_event
from tests.helpers import CHANNEL_ID, follow_event, new_user_id

T0 = 1_700_000_000_000  # LINE timestamps are milliseconds of the past


class Retried(Exception):
    def __init__(self, countdown, kwargs):
        self.countdown, self.kwargs = countdown, kwargs


class FakeTask:
    request = SimpleNamespace(id="task-1")

    def retry(self, countdown, args, kwargs):
        return Retried(countdown, kwargs)


@pytest.fixture
def runtime(make_runtime, sandbox):
    """Against an org that registers LINE-only customers: these tests are about the task's
    fate; tests/unit/tasks/events/test_apply.py covers strict orgs."""
    sandbox.lenient()
    return make_runtime(CAPILLARY_TIMEOUT_SECONDS="1", LINECAP_RETRY_HORIZON_SECONDS="3600")


def run(event, attempts=None, channel_id=CHANNEL_ID):
    """One run of the event task's job, with a task that records its retry instead of
    publishing it."""
    return process_event.spec.run(FakeTask(), channel_id, event, attempts)


def test_follow_applies_and_a_duplicate_is_skipped(runtime, sandbox):
    event = follow_event(new_user_id())
    assert run(event) == "applied"
    assert run(event) == "duplicate"
    assert len(sandbox.customers()) == 1


def test_transient_failure_retries_with_backoff_and_counts_the_attempt(runtime, sandbox):
    sandbox.faults(error_rate=1.0)
    with pytest.raises(Retried) as info:
        run(follow_event(new_user_id()))
    assert info.value.kwargs["attempts"]["failures"] == 1
    assert 0 < info.value.countdown <= runtime.settings.retry_max_delay_seconds


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


def test_busy_user_is_deferred_without_counting_a_failure(runtime):
    user = new_user_id()
    with runtime.state.user_lock(CHANNEL_ID, user), pytest.raises(Retried) as info:
        run(follow_event(user), {"failures": 2, "first_failure_at": 1.0})
    assert info.value.kwargs["attempts"]["failures"] == 2
    assert info.value.countdown <= runtime.settings.retry_max_delay_seconds


def test_exhausted_budget_is_deferred_not_failed(runtime, fake_redis):
    runtime.limiter.limit = 1
    runtime.limiter.try_acquire()
    with pytest.raises(Retried) as info:
        run(follow_event(new_user_id()))
    assert info.value.kwargs["attempts"]["failures"] == 0


def test_unknown_channel_is_a_configuration_dead_letter(runtime):
    event = follow_event(new_user_id())
    result = run(event, channel_id="no-such-channel")
    assert result == "dead_lettered"


def test_re_running_after_a_crash_between_registrations_makes_one_customer(runtime, sandbox):
    """INSTORE registered, then the task died: the re-run finds it and attaches LINE."""
    user = new_user_id()
    sandbox.faults(fail_next=[{"status": 503, "path_contains": "/v2/customers",
                               "method": "POST", "count": 3, "after_write": True}])
    with pytest.raises(Retried):
        run(follow_event(user, event_id="EVT-CRASH"))
    assert len(sandbox.customers()) == 1
    assert run(follow_event(user, event_id="EVT-CRASH")) == "applied"
    [customer] = sandbox.customers()
    assert sorted(p["source"] for p in customer["profiles"]) == ["INSTORE", "LINE"]
