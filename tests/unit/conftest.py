"""Fast fixtures: the Capillary and LINE sandboxes on real loopback sockets in threads,
fakeredis, and a worker runtime over them."""

from __future__ import annotations

import fakeredis
import pytest

from core.capillary.client import CapillaryClient
from core.line.client import LineApiClient
from core.store.dead_letters import DeadLetterStore
from core.store.rate_budget import SharedRateLimiter
from core.store.state import StateStore
from sandboxes.capillary import SandboxConfig, create_sandbox_app
from sandboxes.line import LineSandboxConfig, create_line_sandbox_app
from tests.helpers import (
    ACCESS_TOKEN,
    CHANNEL_ID,
    CHANNEL_SECRET,
    UNVERIFIED_CHANNEL,
    make_settings,
)
from tests.threaded import ThreadedCapillary, ThreadedServer
from workers import journal
from workers.runtime import Runtime, set_runtime


@pytest.fixture
def sandbox():
    server = ThreadedCapillary(create_sandbox_app(SandboxConfig(token_ttl_seconds=300)))
    yield server
    server.stop()


@pytest.fixture
def line_sandbox():
    """The fake LINE platform with the test channel and an unverified one (followers 403)."""
    channel = {"name": "main", "channel_id": CHANNEL_ID, "channel_secret": CHANNEL_SECRET,
               "access_token": ACCESS_TOKEN, "source_account_id": "line-account-1"}
    server = ThreadedServer(create_line_sandbox_app(LineSandboxConfig(
        channels=[channel, UNVERIFIED_CHANNEL])))
    yield server
    server.stop()


@pytest.fixture
def fake_redis():
    return fakeredis.FakeRedis(decode_responses=True)


@pytest.fixture
def make_runtime(sandbox, fake_redis):
    """A worker runtime against the sandbox and fakeredis, installed as the process's runtime
    (what tasks get from get_runtime()); settings can be overridden by variable name."""

    def make(**env: str) -> Runtime:
        settings = make_settings(**{"CAPILLARY_BASE_URL": sandbox.url,
                                    "CAPILLARY_TIMEOUT_SECONDS": "2",
                                    "CAPILLARY_ORG_UNIT_ID": "100", **env})
        limiter = SharedRateLimiter(fake_redis, 10_000, max_inline_wait=0)
        runtime = Runtime(settings, fake_redis, limiter,
                          CapillaryClient.from_settings(settings, limiter,
                                                        observe=journal.capillary_call),
                          LineApiClient(settings.line_api_base_url, timeout=2),
                          StateStore(fake_redis, 60, 60, 30), DeadLetterStore(fake_redis))
        set_runtime(runtime)
        return runtime

    yield make
    set_runtime(None)
