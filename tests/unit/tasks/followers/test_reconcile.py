"""A reconciliation pass against the fake LINE platform: what it queues, what it reports as
drift, what a dry run leaves alone, and how it pages, pauses and starts over."""

from __future__ import annotations

import time

import pytest
import requests

from core.store.reconciliation import ReconciliationStore, Run
from tasks.followers import reconcile
from tasks.followers.reconcile import MAX_BULK_BACKLOG, Reconciler
from tests.helpers import CHANNEL, CHANNEL_ID, new_user_id


@pytest.fixture
def runtime(make_runtime, line_sandbox):
    return make_runtime(LINE_API_BASE_URL=line_sandbox.url)


def befriend(line_sandbox, *users: str, channel_id: str = CHANNEL_ID) -> None:
    """Users add the account without LINE delivering the follow (a missed webhook)."""
    for user in users:
        response = requests.post(line_sandbox.url + "/sandbox/follow", timeout=5, json={
            "channel_id": channel_id, "user_id": user, "deliver": False})
        response.raise_for_status()


def applied(runtime, user: str, state: str, event_id: str = "E-old") -> None:
    runtime.state.finish_event(event_id + user[-6:], "applied", CHANNEL_ID, user,
                               1_700_000_000_000, state)


def later_run(repair: bool = False) -> Run:
    """A run that starts after the records above were written."""
    return Run.new(CHANNEL_ID, "schedule", repair, now=time.time() + 1)


def finish(reconciler: Reconciler, run: Run) -> None:
    for _ in range(100):
        if reconciler.advance(run).done:
            return
    raise AssertionError("the run did not end")


@pytest.fixture
def world(runtime, line_sandbox):
    """A follower linecap never heard of, one in sync, one linecap has as unfollowed, one whose
    follow is parked; a user linecap has as following whom LINE does not list, and one it has
    as unfollowed whom LINE does not list either."""
    users = {name: new_user_id() for name in
             ("unknown", "in_sync", "came_back", "parked", "missing", "gone")}
    befriend(line_sandbox, users["unknown"], users["in_sync"], users["came_back"],
             users["parked"])
    applied(runtime, users["in_sync"], "followed")
    applied(runtime, users["came_back"], "unfollowed")
    applied(runtime, users["missing"], "followed")
    applied(runtime, users["gone"], "unfollowed")
    runtime.state.park(CHANNEL_ID, users["parked"], {"type": "follow"})
    return users


def test_unapplied_followers_get_a_bulk_follow_and_missing_ones_are_reported(runtime, world):
    published: list[dict] = []
    run = later_run()
    finish(Reconciler(runtime, CHANNEL, published.append), run)
    assert {k: run.counts.get(k, 0) for k in ("followers", "in_sync", "never_applied",
                                               "unfollowed_in_linecap", "parked", "drift")} == \
        {"followers": 4, "in_sync": 1, "never_applied": 1, "unfollowed_in_linecap": 1,
         "parked": 1, "drift": 1}
    assert sorted(e["source"]["userId"] for e in published) == \
        sorted([world["unknown"], world["came_back"]])
    assert all(e["type"] == "follow" and e["timestamp"] >= int(run.started_at * 1000) - 1000
               for e in published), "stamped with the time LINE's list was read"
    assert run.drift_sample == [world["missing"]], "reported, and nothing queued for it"
    queued = runtime.history.read(CHANNEL_ID, world["unknown"])
    assert [(e["kind"], e["event"]) for e in queued] == \
        [("queued", f"reconcile-{run.run_id}-{world['unknown']}")]
    assert "never applied" not in queued[0]["reason"] and "no event" in queued[0]["reason"]
    drift = runtime.history.read(CHANNEL_ID, world["missing"])
    assert [e["kind"] for e in drift] == ["drift"] and drift[0]["run"] == run.run_id
    assert runtime.redis.hget(f"linecap:user:{CHANNEL_ID}:{world['in_sync']}", "seen") == \
        run.run_id


def test_drift_gets_an_unfollow_only_when_the_operator_asks(runtime, world):
    published: list[dict] = []
    run = later_run(repair=True)
    finish(Reconciler(runtime, CHANNEL, published.append), run)
    [unfollow] = [e for e in published if e["type"] == "unfollow"]
    assert unfollow["source"]["userId"] == world["missing"]
    assert unfollow["timestamp"] == int(run.started_at * 1000), "any later real event wins"
    assert run.counts["repaired"] == 1
    assert [e["kind"] for e in runtime.history.read(CHANNEL_ID, world["missing"])] == \
        ["drift", "queued"]


def test_a_user_applied_while_the_run_goes_on_is_not_drift(runtime, world):
    run = Run.new(CHANNEL_ID, "schedule", False, now=time.time() - 60)
    finish(Reconciler(runtime, CHANNEL, [].append), run)
    assert run.counts.get("drift", 0) == 0


def test_a_dry_run_compares_the_same_and_changes_nothing(runtime, world):
    run = later_run(repair=True)
    finish(Reconciler(runtime, CHANNEL, publish=None), run)
    assert (run.counts["never_applied"], run.counts["drift"]) == (1, 1)
    assert run.counts.get("repaired", 0) == 0
    assert runtime.redis.keys("linecap:history:*") == []
    assert runtime.redis.hget(f"linecap:user:{CHANNEL_ID}:{world['in_sync']}", "seen") is None


def test_a_run_reads_page_by_page_and_resumes_where_it_was_saved(runtime, line_sandbox,
                                                                monkeypatch):
    monkeypatch.setattr(reconcile, "PAGE_SIZE", 2)
    users = [new_user_id() for _ in range(5)]
    befriend(line_sandbox, *users)
    store = ReconciliationStore(runtime.redis, 3600)
    run = Run.new(CHANNEL_ID, "schedule", False)
    assert store.start(run)
    published: list[dict] = []
    steps = 0
    while True:
        # A new process each step: all it knows is the run saved in Redis.
        saved = store.current(CHANNEL_ID)
        step = Reconciler(runtime, CHANNEL, published.append, step_seconds=0).advance(saved)
        steps += 1
        if step.done:
            break
        store.save(saved)
    assert steps >= 3
    assert sorted(e["source"]["userId"] for e in published) == sorted(users)
    assert saved.counts["followers"] == 5


def test_an_expired_cursor_starts_the_list_over(runtime, line_sandbox):
    users = [new_user_id() for _ in range(2)]
    befriend(line_sandbox, *users)
    run = Run.new(CHANNEL_ID, "schedule", False)
    run.cursor, run.cursor_at = "expired-cursor-from-yesterday", time.time()
    published: list[dict] = []
    finish(Reconciler(runtime, CHANNEL, published.append), run)
    assert run.restarts == 1
    assert sorted(e["source"]["userId"] for e in published) == sorted(users)


def test_a_cursor_older_than_line_keeps_it_is_not_even_tried(runtime, line_sandbox):
    befriend(line_sandbox, new_user_id())
    run = Run.new(CHANNEL_ID, "schedule", False)
    run.cursor, run.cursor_at = "old", time.time() - 24 * 3600
    finish(Reconciler(runtime, CHANNEL, [].append), run)
    assert run.restarts == 1
    listed = [r["query"] for r in requests.get(line_sandbox.url + "/sandbox/requests",
                                               timeout=5).json()["requests"]
              if r["path"] == "/v2/bot/followers/ids"]
    assert listed == ["limit=1000"], "read again from the start, the old cursor never sent"


def test_a_busy_bulk_lane_pauses_the_run_before_it_reads_more(runtime, line_sandbox):
    befriend(line_sandbox, new_user_id())
    run = Run.new(CHANNEL_ID, "schedule", False)
    step = Reconciler(runtime, CHANNEL, [].append, backlog=lambda: MAX_BULK_BACKLOG).advance(run)
    assert not step.done and step.pause > 0
    assert run.counts == {} and run.phase == "followers"
