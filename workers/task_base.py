"""How a linecap task is declared: name, payload and failure policy on the declaration, the
body a plain function of (runtime, channel id, payload).

Every task gets the same frame from its TaskSpec: acks late (a killed worker's message comes
back), the job's fields on every log line, the per-process runtime handed in, the failure
policy of workers.failure_policy, and its outcome counted in the metrics. The queue comes from
workers.registry.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from celery import Task, shared_task
from celery.exceptions import Retry

from core.logs import log_context
from core.metrics import get_metrics
from workers.failure_policy import Attempts, Job, run_with_policy
from workers.outcomes import Outcome
from workers.registry import queue_for
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
        with log_context(**self.log_fields(channel_id, data), task_id=task.request.id):
            metrics = get_metrics()
            metrics.task_started(self.name)
            outcome = Outcome.FAILED
            try:
                outcome = self._outcome(task, job, Attempts.from_kwargs(attempts))
                return outcome
            except Retry:
                outcome = Outcome.RETRIED
                raise
            finally:
                metrics.task_ended(self.name)
                if self.counts_as_event:
                    event = data if isinstance(data, dict) else {}
                    metrics.event_finished(outcome, event, channel_id)

    def _outcome(self, task: Task, job: Job, tries: Attempts) -> Outcome:
        runtime = get_runtime()

        def body() -> Outcome:
            return self.body(runtime, job.channel_id, job.payload)

        outcome = run_with_policy(runtime, job, tries, body) if self.with_policy else body()
        if self.after_run is not None and outcome != Outcome.RETRIED:
            self.after_run(runtime, job, outcome)
        log.info("%s %s", self.noun, outcome, extra={"outcome": str(outcome)})
        return outcome


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
