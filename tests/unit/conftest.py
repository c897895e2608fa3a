"""Fast fixtures: the Capillary sandbox on a real loopback socket in a thread, fakeredis."""

from __future__ import annotations

import threading

import fakeredis
import pytest
import requests
from werkzeug.serving import make_server

from sandboxes.capillary import SandboxConfig, create_sandbox_app


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
