"""A real Redis (REDIS_URL, or an embedded redis-server), sandboxes, gunicorn and a worker."""

from __future__ import annotations

import itertools
import os

import pytest

from cli.localstack.embedded_redis import EmbeddedRedis
from core.store.connection import redis_client
from tests.integration.stack import Stack, database_url

# Each system gets a Redis database of its own, so one system's worker never takes another's
# messages. 1 is the session stack's; 7, 9 and 12 belong to the CLI, linking and observability
# modules, 0 to the browser test's and 14 to the receiver's property test; fresh stacks take
# turns with the rest.
SESSION_DB = 1
_fresh_dbs = itertools.cycle([2, 3, 4, 5, 6, 8, 10, 11, 13, 15])


def clean_database(redis_url: str, db: int) -> str:
    url = database_url(redis_url, db)
    redis_client(url).flushdb()
    return url


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
    with Stack(clean_database(redis_url, SESSION_DB),
               tmp_path_factory.mktemp("logs")).running() as stack:
        yield stack


@pytest.fixture
def fresh_stack(redis_url, tmp_path):
    """A system of its own, for tests that kill, restart or reconfigure its parts."""
    stacks: list[Stack] = []

    def make(**env: str) -> Stack:
        stack = Stack(clean_database(redis_url, next(_fresh_dbs)), tmp_path, **env)
        stacks.append(stack)
        return stack.start_sandboxes()

    make.stacks = stacks  # for the failure report's process logs
    yield make
    for stack in stacks:
        stack.stop()


@pytest.fixture
def fresh_redis_db(redis_url) -> str:
    """An emptied Redis database of its own, for tests that need Redis but no processes."""
    return clean_database(redis_url, next(_fresh_dbs))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed and call.when == "call":
        for name in ("stack", "fresh_stack"):
            value = item.funcargs.get(name)
            for stack in getattr(value, "stacks", [value]):
                if isinstance(stack, Stack):
                    report.sections.append(("process logs", stack.logs()))
