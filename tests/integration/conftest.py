"""A real Redis (REDIS_URL, or an embedded redis-server), sandboxes, gunicorn and a worker."""

from __future__ import annotations

import os

import pytest

from tests.integration.stack import Stack
from workers.embedded_redis import EmbeddedRedis


def pytest_collection_modifyitems(items):
    for item in items:
        if "/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    if os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
        return
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis")).start()
    yield server.url
    server.stop()


@pytest.fixture(scope="session")
def stack(redis_url, tmp_path_factory):
    """One shared system for the end-to-end tests; tests keep apart by unique user ids."""
    stack = Stack(redis_url, tmp_path_factory.mktemp("logs"))
    try:
        stack.start_sandboxes()
        stack.start_web()
        stack.start_worker()
        yield stack
    finally:
        stack.stop()


@pytest.fixture
def fresh_stack(redis_url, tmp_path):
    """A system of its own, for tests that kill, restart or reconfigure its parts."""
    stacks: list[Stack] = []

    def make(**env: str) -> Stack:
        stack = Stack(redis_url, tmp_path, **env)
        stacks.append(stack)
        return stack.start_sandboxes()

    yield make
    for stack in stacks:
        stack.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed and call.when == "call":
        for name in ("stack", "fresh_stack"):
            stack = item.funcargs.get(name)
            if isinstance(stack, Stack):
                report.sections.append(("process logs", stack.logs()))
