"""A sandbox app served on a real loopback socket from a thread, for tests that need HTTP but
no extra process (unit tests and the contract suite)."""

from __future__ import annotations

import threading
from typing import Any

import requests
from flask import Flask
from werkzeug.serving import make_server


class ThreadedServer:
    def __init__(self, app: Flask) -> None:
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,),
                                       daemon=True)
        self.thread.start()

    def control(self, path: str, **body: Any) -> dict:
        """POST to the sandbox's own /sandbox/* control API."""
        response = requests.post(self.url + "/sandbox/" + path, json=body, timeout=5)
        response.raise_for_status()
        return response.json()

    def stop(self) -> None:
        self.server.shutdown()


class ThreadedCapillary(ThreadedServer):
    """The Capillary sandbox, with its inspection and steering endpoints as methods."""

    def faults(self, **settings: Any) -> None:
        self.control("faults", **settings)

    def org(self, **switches: Any) -> None:
        self.control("org", **switches)

    def lenient(self) -> None:
        """Play an org that registers LINE-only customers and looks customers up by LINE id
        (sandboxes.capillary.org.LENIENT), for tests about linecap rather than org rules."""
        from sandboxes.capillary.org import LENIENT, org_view

        self.org(**org_view(LENIENT))

    def calls(self) -> list[dict]:
        return requests.get(self.url + "/sandbox/calls", timeout=5).json()["calls"]

    def customers(self) -> list[dict]:
        return requests.get(self.url + "/sandbox/customers", timeout=5).json()["customers"]
