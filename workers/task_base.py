"""How a linecap task is declared: name, payload and failure policy on the declaration, the
body a plain function of (runtime, channel id, payload).

Every task gets the same frame from its TaskSpec: acks late (a killed worker's message comes
back), the job's fields on every log line, the per-process runtime handed in, the failure
policy of workers.failure_policy, its outcome counted in the metrics, and the run written into
its LINE user's history (workers.journal). The queue comes from workers.registry.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from celery import Task, shared_task
from celery.exceptions import Retry

from core.line import events
from core.logs import log_context
from core.metrics import get_metrics
from core.store.rate_budget import lane
from core.validation import is_line_user_id
from workers.failure_policy import Attempts, Job, run_with_policy
from workers.journal import RunJournal, run_journal
from workers.messages import short_kwargsrepr
from workers.outcomes import Outcome
from workers.registry import lane_of, queue_for
from workers.runtime import Runtime, get_runtime

log = logging.getLogger("linecap.tasks")

Body = Callable[[Runtime, str, Any], Outcome]
AfterRun = Callable[[Runtime, Job, Outcome], None]


class LinecapTask(Task):
    """Celery options every linecap task shares."""

    acks_late = True
    max_retries = None  # the failure policy decides, by the retry horizon
    # A run killed at the hard time limit is requeued, not acknowledged (which would lose it).
    acks_on_failure_or_timeout = False

    def retry(self, args=None, kwargs=None, *more: Any, **options: Any):  # type: ignore[override]
        """A retry is a new message: it gets the same short kwargsrepr as the first one, or
        Celery would show the payload (mobiles, names) in Flower and the worker's log."""
        options.setdefault("kwargsrepr", short_kwargsrepr(kwargs or self.request.kwargs or {}))
        return super().retry(args, kwargs, *more, **options)


@dataclass(frozen=True)
class TaskSpec:
    """One task's declaration.

    job_id: the dead-letter id of a payload (None: the message's task id).
    log_fields: fields for every log line of the run (task_id is added).
    payload: the kwarg carrying the payload (`event`, or `events` for a fan-out).
    with_policy: run the body under the failure policy (off for a body that settles its own
        failures, like the fan-out's requeue).
    counts_as_event: count the outcome in linecap_events_finished_total.
    after_run: bookkeeping after a run that ended the job (not after one that waits to run
        again).
    noun: what the run's last log line calls the job ("event applied", "link linked").
    """

    name: str
    body: Body
    job_id: Callable[[str, Any], str | None]
    log_fields: Callable[[str, Any], dict[str, Any]]
    payload: str = "event"
    with_policy: bool = True
    counts_as_event: bool = False
    after_run: AfterRun | None = None
    noun: str = "job"

    def run(self, task: Task, channel_id: str, data: Any,
            attempts: dict | None = None) -> Outcome:
        """One run of the job: its outcome (RETRIED when it waits in Redis to run again)."""
        job = Job(self.job_id(channel_id, data) or str(task.request.id), channel_id, data,
                  self.name, self.payload, task_id=str(task.request.id))
        delivery = getattr(task.request, "delivery_info", None) or {}
        fields = self.log_fields(channel_id, data)
        journal = self._journal(job, fields, attempts, delivery.get("routing_key"))
        with log_context(**fields, task_id=task.request.id), \
                lane(lane_of(delivery.get("routing_key"))), \
                run_journal(journal, _write_history):
            metrics = get_metrics()
            metrics.task_started(self.name)
            outcome = Outcome.FAILED
            try:
                outcome = self._outcome(task, job, Attempts.from_kwargs(attempts))
                journal.ended(outcome)
                return outcome
            except Retry:
                outcome = Outcome.RETRIED
                raise
            finally:
                metrics.task_ended(self.name)
                if self.counts_as_event:
                    event = data if isinstance(data, dict) else {}
                    metrics.event_finished(outcome, event, channel_id)

    def _journal(self, job: Job, fields: dict[str, Any], attempts: dict | None,
                 queue: str | None) -> RunJournal:
        """The run's entries for its user's history (none without a LINE user)."""
        user = fields.get("user_id")
        data = job.payload if isinstance(job.payload, dict) else {}
        journal = RunJournal(
            job.channel_id, user if is_line_user_id(user) else None,
            fields.get("webhook_event_id") or job.letter_id,
            events.event_type(data) if self.counts_as_event else self.noun,
            Attempts.from_kwargs(attempts).failures + 1)
        if attempts is None and self.counts_as_event:  # the message's first run
            journal.received(data, queue)
        return journal

    def _outcome(self, task: Task, job: Job, tries: Attempts) -> Outcome:
        runtime = get_runtime()

        def body() -> Outcome:
            return self.body(runtime, job.channel_id, job.payload)

        outcome = run_with_policy(runtime, job, tries, body) if self.with_policy else body()
        if self.after_run is not None and outcome != Outcome.RETRIED:
            self.after_run(runtime, job, outcome)
        log.info("%s %s", self.noun, outcome, extra={"outcome": str(outcome)})
        return outcome


def _write_history(journal: RunJournal) -> None:
    get_runtime().history.record(journal.channel_id, journal.user_id, journal.entries)


def linecap_task(name: str, **options: Any) -> Callable[[Body], Task]:
    """Declare the task `name` with TaskSpec's options around the decorated body."""
    queue_for(name)  # an undeclared name fails at import, not when the first message comes

    def declare(body: Body) -> Task:
        spec = TaskSpec(name, body, **options)

        # `spec` becomes an attribute of the task's class, in whichever Celery app builds it.
        @shared_task(bind=True, name=name, base=LinecapTask, spec=spec)
        def entry(self: Task, channel_id: str, attempts: dict | None = None,
                  **kwargs: Any) -> str:
            return spec.run(self, channel_id, kwargs[spec.payload], attempts)

        return entry

    return declare
