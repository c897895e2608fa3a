"""Fast fixtures: the Capillary sandbox on a real loopback socket in a thread, fakeredis, and a
worker runtime over both."""

from __future__ import annotations

import fakeredis
import pytest

from core.capillary.client import CapillaryClient
from core.line.client import LineApiClient
from core.store.dead_letters import DeadLetterStore
from core.store.rate_budget import SharedRateLimiter
from core.store.state import StateStore
from sandboxes.capillary import SandboxConfig, create_sandbox_app
from tests.helpers import make_settings
from tests.threaded import ThreadedCapillary
from workers.runtime import Runtime, set_runtime


@pytest.fixture
def sandbox():
    server = ThreadedCapillary(create_sandbox_app(SandboxConfig(token_ttl_seconds=300)))
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
                          CapillaryClient.from_settings(settings, limiter),
                          LineApiClient("http://127.0.0.1:9", timeout=0.2),
                          StateStore(fake_redis, 60, 60, 30), DeadLetterStore(fake_redis))
        set_runtime(runtime)
        return runtime

    yield make
    set_runtime(None)
