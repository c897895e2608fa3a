"""The task registry is the one place task names and queues are written: every declared task
is in it, every registered task is declared, and a worker started as the Procfile starts it
consumes exactly its queues."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.helpers import make_settings
from workers.celery_app import make_celery
from workers.registry import QUEUES, TASK_QUEUES, UnknownTask, queue_for, worker_queues

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def celery_app():
    app = make_celery(make_settings())
    app.loader.import_default_modules()
    yield app
    app.close()


def test_every_registered_task_is_declared_and_every_declared_task_registered(celery_app):
    declared = {name for name in celery_app.tasks if name.startswith("linecap.")}
    assert declared == set(TASK_QUEUES)


def test_routing_sends_each_task_to_its_registry_queue(celery_app):
    router = celery_app.amqp.router
    for task, queue in TASK_QUEUES.items():
        assert router.route({}, task)["queue"].name == queue


def test_a_worker_without_q_consumes_every_registry_queue(celery_app):
    assert tuple(celery_app.amqp.queues) == QUEUES
    assert worker_queues() == ",".join(QUEUES)


def test_no_command_line_writes_the_queue_list_again():
    procfile = (ROOT / "Procfile").read_text()
    worker = next(line for line in procfile.splitlines() if line.startswith("worker:"))
    assert " -Q " not in worker
    for path in (ROOT / "cli").rglob("*.py"):
        assert not re.search(r"line-events,", path.read_text()), path


def test_an_unknown_task_name_is_refused():
    with pytest.raises(UnknownTask):
        queue_for("linecap.no_such_task")


def test_a_task_runs_in_the_lane_of_its_queue():
    from core.store.rate_budget import BULK, LIVE
    from workers.registry import BULK_EVENTS_QUEUE, EVENTS_QUEUE, IMPORTS_QUEUE, lane_of

    assert queue_for("linecap.process_event") == EVENTS_QUEUE
    assert queue_for("linecap.process_event", BULK) == BULK_EVENTS_QUEUE
    assert queue_for("linecap.import_user", LIVE) == IMPORTS_QUEUE, "imports are bulk only"
    assert lane_of(BULK_EVENTS_QUEUE) == BULK and lane_of(IMPORTS_QUEUE) == BULK
    assert lane_of(EVENTS_QUEUE) == LIVE and lane_of(None) == LIVE
