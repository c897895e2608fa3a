"""Baseline for part 2: a Celery app with linecap's broker and worker settings and a no-op task.

`celery -A bench.noop_app worker ...` with the same flags as the linecap worker; the task takes
the same kwargs as linecap's (so messages are the same size) and does nothing with them.
"""

from __future__ import annotations

from typing import Any

from celery import Celery

from bench.queueing import NOOP_TASK
from config import load_settings
from workers.celery_app import celery_config  # also connects linecap's JSON log set-up
from workers.registry import EVENTS_QUEUE

app = Celery("linecap-bench-noop")
app.conf.update(celery_config(load_settings()))
app.conf.task_routes = {NOOP_TASK: {"queue": EVENTS_QUEUE}}


@app.task(name=NOOP_TASK, acks_late=True)
def noop(channel_id: str, event: dict[str, Any], attempts: dict | None = None) -> str:
    return "noop"
