"""Runs over time: a tick starts one when the interval has passed, a stopped one is resumed,
two processes never advance a channel at once, and LINE's refusal ends a run with one line."""

from __future__ import annotations

import json
import logging
import time

import pytest
import requests

from core.store.reconciliation import Run
from tasks.followers import runs
from tasks.followers.reconcile import Reconciler
from tests.helpers import CHANNEL, CHANNEL_ID, UNVERIFIED_CHANNEL, channels_json, new_user_id


@pytest.fixture
def runtime(make_runtime, line_sandbox):
    return make_runtime(LINE_API_BASE_URL=line_sandbox.url,
                        LINE_CHANNELS=channels_json(UNVERIFIED_CHANNEL))


@pytest.fixture
def followers(line_sandbox):
    users = [new_user_id() for _ in range(3)]
    for user in users:
        requests.post(line_sandbox.url + "/sandbox/follow", timeout=5, json={
            "channel_id": CHANNEL_ID, "user_id": user, "deliver": False}).raise_for_status()
    return users


def reconciler(runtime, published=None, channel=CHANNEL, **options) -> Reconciler:
    return Reconciler(runtime, channel, (published if published is not None else []).append,
                      **options)


def test_a_tick_starts_a_run_when_the_interval_has_passed_since_the_last(runtime, followers):
    published: list[dict] = []
    first = runs.advance(runtime, reconciler(runtime, published), interval=3600)
    assert first.status == runs.FINISHED and len(published) == 3
    assert first.summary["status"] == "completed" and first.summary["by"] == "schedule"
    assert runs.store_for(runtime).last(CHANNEL_ID)["run_id"] == first.run.run_id
    assert runs.advance(runtime, reconciler(runtime), interval=3600).status == runs.NOT_DUE
    runtime.redis.set(f"linecap:reconcile:{CHANNEL_ID}:last-started", time.time() - 3601)
    assert runs.advance(runtime, reconciler(runtime), interval=3600).status == runs.FINISHED


def test_two_claims_at_once_start_one_run(runtime):
    store = runs.store_for(runtime)
    first, second = Run.new(CHANNEL_ID, "schedule", False), Run.new(CHANNEL_ID, "cli", False)
    assert store.start(first, 3600) and not store.start(second, 0)
    assert store.current(CHANNEL_ID).run_id == first.run_id


def test_steps_go_on_by_continuation_and_a_stale_continuation_is_dropped(runtime, followers,
                                                                         monkeypatch):
    from tasks.followers import reconcile

    monkeypatch.setattr(reconcile, "PAGE_SIZE", 1)
    slow = reconciler(runtime, step_seconds=0)
    started = runs.advance(runtime, slow, interval=3600)
    assert started.status == runs.CONTINUED and started.goes_on and started.run.slice == 1
    run_id = started.run.run_id
    assert runs.advance(runtime, slow, step={"run": run_id, "slice": 0}).status == \
        runs.SUPERSEDED
    assert runs.advance(runtime, slow, step={"run": "other", "slice": 1}).status == \
        runs.SUPERSEDED
    result = started
    while result.goes_on:
        result = runs.advance(runtime, slow, step={"run": run_id, "slice": result.run.slice})
    assert result.status == runs.FINISHED and result.summary["counts"]["followers"] == 3


def test_a_channel_being_advanced_elsewhere_is_left_alone(runtime, followers):
    with runs.store_for(runtime).lock(CHANNEL_ID, 10):
        assert runs.advance(runtime, reconciler(runtime), interval=3600).status == runs.BUSY
    assert runs.store_for(runtime).current(CHANNEL_ID) is None


def test_a_run_that_stopped_is_resumed_by_a_tick_and_a_fresh_one_is_not(runtime, followers,
                                                                        monkeypatch):
    from tasks.followers import reconcile

    monkeypatch.setattr(reconcile, "PAGE_SIZE", 1)
    started = runs.advance(runtime, reconciler(runtime, step_seconds=0), interval=3600)
    assert started.status == runs.CONTINUED  # ... and its continuation is lost
    assert runs.advance(runtime, reconciler(runtime), interval=3600).status == runs.NOT_DUE
    key = f"linecap:reconcile:{CHANNEL_ID}:run"
    saved = json.loads(runtime.redis.get(key))
    saved["updated_at"] = time.time() - runs.STALE_SECONDS - 1
    runtime.redis.set(key, json.dumps(saved))
    resumed = runs.advance(runtime, reconciler(runtime), interval=3600)
    assert resumed.status == runs.FINISHED and resumed.run.run_id == started.run.run_id


def test_an_unverified_account_ends_its_run_with_one_warning(runtime, caplog):
    unverified = runtime.settings.channel(UNVERIFIED_CHANNEL["channel_id"])
    with caplog.at_level(logging.WARNING, logger="linecap.reconcile"):
        result = runs.advance(runtime, reconciler(runtime, channel=unverified), interval=3600)
    assert result.status == runs.REFUSED
    warnings = [r for r in caplog.records if r.name == "linecap.reconcile"]
    assert len(warnings) == 1 and "verified or premium" in warnings[0].getMessage()
    store = runs.store_for(runtime)
    assert store.current(unverified.channel_id) is None, "no run left to retry"
    last = store.last(unverified.channel_id)
    assert last["status"] == "refused" and "HTTP 403" in last["message"]
    assert runs.advance(runtime, reconciler(runtime, channel=unverified),
                        interval=3600).status == runs.NOT_DUE, "the next try is the next run"


def test_line_failing_pauses_the_run_for_a_later_tick(make_runtime):
    runtime = make_runtime(LINE_API_BASE_URL="http://127.0.0.1:9")
    result = runs.advance(runtime, reconciler(runtime), interval=3600)
    assert result.status == runs.PAUSED and result.run.failures == 1
    run = runs.store_for(runtime).current(CHANNEL_ID)
    assert run.paused_until - time.time() == pytest.approx(runs.FAILURE_PAUSE_SECONDS, abs=5)
    assert not runs.resumable(run) and runs.resumable(run, now=run.paused_until)


def test_a_list_that_cannot_be_read_to_its_end_fails_the_run_once(runtime, caplog):
    from core.errors import InvalidInputError

    def page(channel, start=None, limit=1000):
        if start:
            raise InvalidInputError("LINE followers: HTTP 400 (start is invalid)")
        return [new_user_id()], "next-page"

    runtime.line_api.follower_page = page
    with caplog.at_level(logging.WARNING, logger="linecap.reconcile"):
        result = runs.advance(runtime, reconciler(runtime), interval=3600)
    assert result.status == runs.FAILED
    assert result.summary["status"] == "failed" and "could not be read" in \
        result.summary["message"]
    assert [r.levelname for r in caplog.records if r.name == "linecap.reconcile"] == \
        ["WARNING"] * 3 + ["ERROR"], "three starts over, then one error"
    assert runs.store_for(runtime).current(CHANNEL_ID) is None
