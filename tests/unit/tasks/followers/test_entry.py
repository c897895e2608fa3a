"""The reconciliation task: a beat tick runs the channel's due run, and a step that wants
another sends its continuation."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import requests

from tasks.followers import entry, runs
from tests.helpers import CHANNEL_ID, new_user_id
from workers.registry import BULK_EVENTS_QUEUE, RECONCILE_QUEUE, RECONCILE_TASK

TASK = SimpleNamespace(request=SimpleNamespace(id="tick-1",
                                               delivery_info={"routing_key": RECONCILE_QUEUE}))


class Published:
    def __init__(self) -> None:
        self.sent: list[dict] = []

    def send_task(self, name, kwargs=None, task_id=None, queue=None, **options):
        self.sent.append({"name": name, "kwargs": kwargs, "task_id": task_id, "queue": queue})


@pytest.fixture
def published(monkeypatch):
    app = Published()
    monkeypatch.setattr(entry, "current_app", app)
    return app


@pytest.fixture
def runtime(make_runtime, line_sandbox):
    return make_runtime(LINE_API_BASE_URL=line_sandbox.url)


def test_a_tick_runs_the_due_reconciliation(runtime, line_sandbox, published):
    user = new_user_id()
    requests.post(line_sandbox.url + "/sandbox/follow", timeout=5, json={
        "channel_id": CHANNEL_ID, "user_id": user, "deliver": False}).raise_for_status()
    assert entry.reconcile_followers.spec.run(TASK, CHANNEL_ID, {}) == "finished"
    [follow] = published.sent
    assert (follow["name"], follow["queue"], follow["kwargs"]["event"]["source"]["userId"]) == \
        ("linecap.process_event", BULK_EVENTS_QUEUE, user)
    assert entry.reconcile_followers.spec.run(TASK, CHANNEL_ID, {}) == "not_due"


def test_a_step_that_goes_on_sends_its_continuation(runtime, published, monkeypatch):
    from core.store.reconciliation import Run

    run = Run.new(CHANNEL_ID, "schedule", False)
    run.slice = 4
    monkeypatch.setattr(entry, "advance", lambda *a, **k: runs.Advanced(runs.CONTINUED, run))
    assert entry.reconcile_followers.spec.run(TASK, CHANNEL_ID, {}) == "continued"
    [continuation] = published.sent
    assert continuation == {
        "name": RECONCILE_TASK, "queue": RECONCILE_QUEUE,
        "task_id": f"reconcile-{run.run_id}-4",
        "kwargs": {"channel_id": CHANNEL_ID, "step": {"run": run.run_id, "slice": 4}}}
