"""The mover publishes due jobs to their registry queue with their own task id and kwargs; a
publish the broker refuses leaves the job in Redis; a job for an unknown task is dead-lettered;
two movers never publish one claim twice."""

from __future__ import annotations

import time

import fakeredis
import pytest
from kombu.exceptions import OperationalError

from core.store.dead_letters import DeadLetterStore
from core.store.delayed_jobs import DelayedJob, DelayedJobs
from workers.mover import DelayedJobMover
from workers.registry import IMPORT_TASK, PROCESS_EVENT_TASK, queue_for


class Broker:
    """Stands in for the Celery app's send_task; can refuse like a broker that is down."""

    def __init__(self) -> None:
        self.sent: list[dict] = []
        self.down = False

    def send_task(self, name, kwargs=None, task_id=None, queue=None, **options):
        if self.down:
            raise OperationalError("broker down")
        self.sent.append({"name": name, "kwargs": kwargs, "task_id": task_id, "queue": queue})


@pytest.fixture
def client():
    return fakeredis.FakeRedis(decode_responses=True)


@pytest.fixture
def broker():
    return Broker()


def mover(client, broker, lease: float = 30.0, poll: float = 1.0) -> DelayedJobMover:
    return DelayedJobMover(broker, DelayedJobs(client), DeadLetterStore(client),
                           poll_seconds=poll, lease_seconds=lease)


def event_job(task_id: str, failures: int = 1) -> DelayedJob:
    return DelayedJob(PROCESS_EVENT_TASK, task_id,
                      {"channel_id": "c", "event": {"webhookEventId": task_id},
                       "attempts": {"failures": failures, "first_failure_at": 1.0}}, failures)


def test_due_jobs_are_published_to_their_queue_as_they_were(client, broker):
    store = DelayedJobs(client)
    store.defer(event_job("E1"), 0)
    store.defer(DelayedJob(IMPORT_TASK, "import-1", {"channel_id": "c", "event": {}}), 0)
    store.defer(event_job("E-later"), 60)
    assert mover(client, broker).move_due() == 2
    assert sorted((m["name"], m["task_id"], m["queue"]) for m in broker.sent) == [
        (IMPORT_TASK, "import-1", queue_for(IMPORT_TASK)),
        (PROCESS_EVENT_TASK, "E1", queue_for(PROCESS_EVENT_TASK))]
    assert next(m for m in broker.sent if m["task_id"] == "E1")["kwargs"] == \
        event_job("E1").kwargs
    assert store.waiting() == 1 and store.get("E-later") is not None


def test_a_publish_the_broker_refuses_leaves_the_job_for_a_later_claim(client, broker):
    store = DelayedJobs(client)
    store.defer(event_job("E1"), 0)
    broker.down = True
    assert mover(client, broker, lease=0.2).move_due() == 0
    assert store.waiting() == 1
    broker.down = False
    assert mover(client, broker, lease=0.2).move_due() == 0, "still within its lease"
    time.sleep(0.25)
    assert mover(client, broker).move_due() == 1
    assert [m["task_id"] for m in broker.sent] == ["E1"] and store.waiting() == 0


def test_two_movers_publish_each_job_once(client, broker):
    store = DelayedJobs(client)
    for n in range(30):
        store.defer(event_job(f"E{n}"), 0)
    first, second = mover(client, broker), mover(client, broker)
    assert first.move_due() + second.move_due() == 30
    assert sorted(m["task_id"] for m in broker.sent) == sorted(f"E{n}" for n in range(30))


def test_a_job_for_a_task_this_version_does_not_know_is_dead_lettered(client, broker):
    store = DelayedJobs(client)
    store.defer(DelayedJob("linecap.retired_task", "X1",
                           {"channel_id": "c", "event": {"webhookEventId": "X1"},
                            "attempts": {"failures": 2}}), 0)
    assert mover(client, broker).move_due() == 1
    letter = DeadLetterStore(client).get("X1")
    assert letter.error_class == "unknown_task" and letter.task == "linecap.retired_task"
    assert letter.event == {"webhookEventId": "X1"} and letter.attempts == 2
    assert broker.sent == [] and store.waiting() == 0


def test_the_thread_moves_jobs_as_they_come_due_until_stopped(client, broker):
    store = DelayedJobs(client)
    running = mover(client, broker, poll=0.05).start()
    try:
        store.defer(event_job("E1"), 0.3)
        deadline = time.monotonic() + 10
        while not broker.sent and time.monotonic() < deadline:
            time.sleep(0.02)
        assert [m["task_id"] for m in broker.sent] == ["E1"]
    finally:
        running.stop()
    store.defer(event_job("E2"), 0)
    time.sleep(0.2)
    assert [m["task_id"] for m in broker.sent] == ["E1"], "a stopped mover moves nothing"
