"""The delayed-job store: a job waits until due, goes to one mover at a time, leaves Redis only
once published, and two copies of one job waiting become one that loses neither the longer
wait nor a counted failure."""

from __future__ import annotations

import time

import fakeredis
import pytest

from core.store.delayed_jobs import DUE, JOBS, MOVING, DelayedJob, DelayedJobs


@pytest.fixture
def jobs():
    return DelayedJobs(fakeredis.FakeRedis(decode_responses=True))


def job(task_id: str = "E1", failures: int = 0, note: str = "") -> DelayedJob:
    return DelayedJob("linecap.process_event", task_id,
                      {"channel_id": "c", "event": {"webhookEventId": task_id, "note": note},
                       "attempts": {"failures": failures, "first_failure_at": None}}, failures)


def test_a_job_is_claimed_once_due_and_leaves_only_when_done(jobs):
    assert jobs.defer(job(), 0.2) == pytest.approx(0.2)
    assert jobs.claim(10, lease_seconds=30) == []
    assert jobs.waiting() == 1
    time.sleep(0.25)
    [claim] = jobs.claim(10, lease_seconds=30)
    assert claim.job == job()
    assert jobs.claim(10, lease_seconds=30) == [], "a claimed job goes to one mover"
    assert jobs.waiting() == 1, "claimed is not published: it stays in Redis"
    jobs.done(claim)
    assert jobs.waiting() == 0 and jobs.client.hlen(JOBS) == 0


def test_a_job_whose_mover_died_is_claimed_again_after_the_lease(jobs):
    jobs.defer(job(), 0)
    [first] = jobs.claim(10, lease_seconds=0.2)
    assert jobs.claim(10, lease_seconds=0.2) == []
    time.sleep(0.25)  # the first mover never published nor called done
    [second] = jobs.claim(10, lease_seconds=30)
    assert second.job == first.job and second.token != first.token
    jobs.done(first)  # the first mover comes back late: the second one's claim stands
    assert jobs.client.zscore(MOVING, "E1") is not None
    jobs.done(second)
    assert jobs.waiting() == 0


def test_a_job_deferred_again_while_being_moved_keeps_its_new_wait(jobs):
    """The published copy ran at once and must wait again before the mover calls done."""
    jobs.defer(job(failures=1), 0)
    [claim] = jobs.claim(10, lease_seconds=30)
    jobs.defer(job(failures=2), 60)
    jobs.done(claim)
    waiting, due = jobs.get("E1")
    assert waiting.failures == 2 and due - time.time() > 50
    assert jobs.client.zcard(MOVING) == 0


def test_two_copies_of_a_job_wait_as_one_with_the_longer_wait_and_more_failures(jobs):
    jobs.defer(job(failures=3, note="counted more"), 100)
    assert jobs.defer(job(failures=1, note="an early copy"), 1) == pytest.approx(100, abs=1)
    waiting, due = jobs.get("E1")
    assert waiting.failures == 3 and waiting.kwargs["event"]["note"] == "counted more"
    assert due - time.time() > 95
    jobs.defer(job(failures=4, note="failed again"), 5)
    waiting, due = jobs.get("E1")
    assert waiting.failures == 4 and due - time.time() > 95
    assert jobs.client.zcard(DUE) == 1


def test_claims_come_in_batches_of_the_earliest(jobs):
    for n in range(5):
        jobs.defer(job(f"E{n}"), 0)
    first = jobs.claim(3, lease_seconds=30)
    assert len(first) == 3
    assert len(jobs.claim(3, lease_seconds=30)) == 2


def test_due_times_are_kept_on_redis_s_clock(jobs):
    """Workers on several machines agree on when a job is due whatever their own clocks."""
    jobs.defer(job(), 30)
    redis_now = float(jobs.client.time()[0])
    _, due = jobs.get("E1")
    assert 29 <= due - redis_now <= 31
