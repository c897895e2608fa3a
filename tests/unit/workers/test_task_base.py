"""The frame every task gets from its declaration: outcome counted, retries passed on, the
in-flight gauge back to zero, bookkeeping after a run that ended."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from celery.exceptions import Retry

from core.metrics import multiprocess_registry
from tests.helpers import CHANNEL_ID, new_user_id
from workers.outcomes import Outcome
from workers.registry import LINK_TASK, PROCESS_EVENT_TASK
from workers.task_base import TaskSpec

TASK = SimpleNamespace(request=SimpleNamespace(id="task-1"))


def sample(name: str, **labels: str) -> float:
    return multiprocess_registry().get_sample_value(name, labels) or 0.0


def event_spec(body, **options) -> TaskSpec:
    return TaskSpec(PROCESS_EVENT_TASK, body, job_id=lambda _, event: event["webhookEventId"],
                    log_fields=lambda channel, _: {"channel": channel}, counts_as_event=True,
                    **options)


def account_link_event(event_id: str) -> dict:
    return {"type": "accountLink", "webhookEventId": event_id,
            "source": {"type": "user", "userId": new_user_id()},
            "link": {"result": "ok", "nonce": "n" * 20}}


@pytest.mark.parametrize("outcome", [Outcome.LINK_QUEUED, Outcome.LINK_FAILED,
                                     Outcome.LINK_REFUSED_USED, Outcome.DUPLICATE])
def test_account_link_outcomes_are_counted_under_their_own_name(make_runtime, outcome):
    make_runtime()
    labels = {"type": "accountLink", "channel": CHANNEL_ID}
    before = {o: sample("linecap_events_finished_total", outcome=o, **labels)
              for o in (outcome, "other")}
    spec = event_spec(lambda runtime, channel, event: outcome)
    assert spec.run(TASK, CHANNEL_ID, account_link_event("E-" + new_user_id())) == outcome
    assert sample("linecap_events_finished_total", outcome=outcome,
                  **labels) == before[outcome] + 1
    assert sample("linecap_events_finished_total", outcome="other", **labels) == before["other"]


def test_a_retry_is_counted_as_retried_and_passed_on(make_runtime):
    make_runtime()

    def busy(runtime, channel, event):
        raise Retry("budget busy")

    labels = {"outcome": "retried", "type": "accountLink", "channel": CHANNEL_ID}
    before = sample("linecap_events_finished_total", **labels)
    with pytest.raises(Retry):
        event_spec(busy, with_policy=False).run(TASK, CHANNEL_ID, account_link_event("E-r"))
    assert sample("linecap_events_finished_total", **labels) == before + 1
    assert sample("linecap_tasks_in_progress", task=PROCESS_EVENT_TASK) == 0


def test_tasks_that_are_not_events_are_not_counted_as_events(make_runtime):
    make_runtime()
    before = sample("linecap_events_finished_total", outcome="linked", type="other",
                    channel=CHANNEL_ID)
    seen = []
    spec = TaskSpec(LINK_TASK, lambda runtime, channel, payload: Outcome.LINKED,
                    job_id=lambda *_: None, log_fields=lambda *_: {},
                    after_run=lambda runtime, job, outcome: seen.append((job.letter_id, outcome)))
    assert spec.run(TASK, CHANNEL_ID, {"type": "link"}) == Outcome.LINKED
    assert seen == [("task-1", Outcome.LINKED)], "no job id: the message's task id"
    assert sample("linecap_events_finished_total", outcome="linked", type="other",
                  channel=CHANNEL_ID) == before
    assert sample("linecap_tasks_in_progress", task=LINK_TASK) == 0


def test_a_retried_message_shows_no_personal_data_in_flower(monkeypatch):
    """Celery copies a retry's kwargs into a new message; without a kwargsrepr it would show
    them (mobile, name) in Flower and in the worker's error lines."""
    from tests.helpers import make_settings
    from workers.celery_app import make_celery

    app = make_celery(make_settings())
    app.loader.import_default_modules()  # the task modules of `include`
    sent = []
    # Patched on the class: a shared task publishes through whichever app is current.
    monkeypatch.setattr(type(app), "send_task", lambda self, *args, **options: sent.append(options))
    task = app.tasks[LINK_TASK]
    kwargs = {"channel_id": CHANNEL_ID, "event": {
        "type": "link", "source": {"type": "user", "userId": new_user_id()},
        "link": {"mobile": "66812345678", "name": "Somchai"}}}
    task.push_request(id="link-1", kwargs=kwargs, delivery_info={}, retries=0,
                      called_directly=False)
    try:
        with pytest.raises(Retry):
            task.retry(countdown=1, kwargs=kwargs)
    finally:
        task.pop_request()
    [options] = sent
    assert options["kwargsrepr"] == f"channel {CHANNEL_ID} (payload not shown)"
    assert "66812345678" not in str(options["kwargsrepr"])
