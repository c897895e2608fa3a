"""What the CLI tests share: a clean environment, fakeredis behind every Redis client the
commands make, and a Celery app that records what would be published."""

from __future__ import annotations

import fakeredis
import pytest

from cli import context
from tests.helpers import base_env


class RecordingCelery:
    """Stands in for the Celery app: records send_task calls, can act as the worker."""

    def __init__(self, on_send=None) -> None:
        self.sent: list[dict] = []
        self.on_send = on_send
        self.closed = False

    def send_task(self, name, kwargs=None, task_id=None, queue=None, **options):
        self.sent.append({"name": name, "kwargs": kwargs, "task_id": task_id, "queue": queue,
                          **options})
        if self.on_send:
            self.on_send(self.sent[-1])

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def env(monkeypatch):
    """A valid environment, and nothing else linecap reads."""
    import os

    for name in list(os.environ):
        if name.startswith(("CAPILLARY_", "LINE_", "LINECAP_", "REDIS_")) or name == "PORT":
            monkeypatch.delenv(name)
    for name, value in base_env().items():
        monkeypatch.setenv(name, value)
    return monkeypatch


@pytest.fixture
def redis(env, monkeypatch):
    client = fakeredis.FakeRedis(decode_responses=True)
    monkeypatch.setattr(context, "redis_client", lambda url, **kw: client)
    monkeypatch.setattr("workers.runtime.redis_client", lambda url, **kw: client)
    return client


@pytest.fixture
def celery(monkeypatch):
    app = RecordingCelery()
    monkeypatch.setattr(context, "make_celery_app", lambda settings: app)
    return app
