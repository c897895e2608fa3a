"""Fast fixtures: the Capillary sandbox on a real loopback socket in a thread, fakeredis, and a
worker runtime over both."""

from __future__ import annotations

import threading

import fakeredis
import pytest
import requests
from werkzeug.serving import make_server

from core.capillary.client import CapillaryClient
from core.line.client import LineApiClient
from core.store.dead_letters import DeadLetterStore
from core.store.rate_budget import SharedRateLimiter
from core.store.state import StateStore
from sandboxes.capillary import SandboxConfig, create_sandbox_app
from tests.helpers import make_settings
from workers.runtime import Runtime, set_runtime


class ThreadedSandbox:
    def __init__(self, config: SandboxConfig) -> None:
        self.server = make_server("127.0.0.1", 0, create_sandbox_app(config), threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,),
                                       daemon=True)
        self.thread.start()

    def faults(self, **settings) -> None:
        requests.post(self.url + "/sandbox/faults", json=settings, timeout=5).raise_for_status()

    def calls(self) -> list[dict]:
        return requests.get(self.url + "/sandbox/calls", timeout=5).json()["calls"]

    def customers(self) -> list[dict]:
        return requests.get(self.url + "/sandbox/customers", timeout=5).json()["customers"]

    def stop(self) -> None:
        self.server.shutdown()


@pytest.fixture
def sandbox():
    server = ThreadedSandbox(SandboxConfig(token_ttl_seconds=300))
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
                                    "CAPILLARY_TIMEOUT_SECONDS": "2", **env})
        limiter = SharedRateLimiter(fake_redis, 10_000, max_inline_wait=0)
        runtime = Runtime(settings, fake_redis, limiter,
                          CapillaryClient.from_settings(settings, limiter),
                          LineApiClient("http://127.0.0.1:9", timeout=0.2),
                          StateStore(fake_redis, 60, 60, 30), DeadLetterStore(fake_redis))
        set_runtime(runtime)
        return runtime

    yield make
    set_runtime(None)
