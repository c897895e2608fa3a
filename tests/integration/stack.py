"""Real processes for integration tests: Capillary and LINE sandboxes, gunicorn, Celery workers.

Every piece runs as its own OS process and talks over loopback sockets, as in production.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import requests

from cli.localstack.ports import free_port
from tests.helpers import CHANNEL_ID, channels_json, signed_body

ROOT = Path(__file__).resolve().parents[2]
SANDBOX_USER, SANDBOX_PASSWORD = "sandbox-till", "sandbox-password"


def wait_until(predicate: Callable[[], Any], timeout: float = 20.0, interval: float = 0.1,
               message: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


def database_url(url: str, db: int) -> str:
    """The same Redis server, another database."""
    return urlparse(url)._replace(path=f"/{db}").geturl()


class Proc:
    """One child process with its output in a log file (shown when a test fails)."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - lives as long as the process
        self.popen = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=self._log,
                                      stderr=subprocess.STDOUT, start_new_session=True)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        if self.alive():
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()

    def kill(self) -> None:
        """SIGKILL the whole process group: the worker and all its pool children."""
        if self.alive():
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(10)


class Stack:
    """One system. `org` is the Capillary sandbox's org: `lenient` (registers LINE-only
    customers, looks up by LINE id) for tests of linecap's own mechanics, `strict` or a JSON
    object of switches for tests of what real orgs enforce."""

    def __init__(self, redis_url: str, log_dir: Path, org: str = "lenient",
                 endpoint_propagation_seconds: float = 0, line_verified: bool = True,
                 **env_overrides: str) -> None:
        self.redis_url = redis_url
        self.log_dir = log_dir
        self.org = org
        self.endpoint_propagation_seconds = endpoint_propagation_seconds
        # False: the fake LINE plays an account that is neither verified nor premium (its
        # follower list answers 403).
        self.line_verified = line_verified
        self.procs: list[Proc] = []
        self.capillary_url = ""
        self.line_url = ""
        self.web_url = ""
        self.env_overrides = env_overrides

    # -- processes ---------------------------------------------------------------------
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CAPILLARY_", "LINE_"))}
        env.update({
            "REDIS_URL": self.redis_url,
            "CAPILLARY_BASE_URL": self.capillary_url,
            "CAPILLARY_USERNAME": SANDBOX_USER,
            "CAPILLARY_PASSWORD": SANDBOX_PASSWORD,
            "LINE_CHANNELS": channels_json(),
            "LINE_API_BASE_URL": self.line_url,
            "CAPILLARY_RATE_LIMIT_RPM": "100000",
            "CAPILLARY_ORG_UNIT_ID": "100",
            "LINECAP_WORKER_METRICS_PORT": "0",
            "PYTHONUNBUFFERED": "1",
        })
        env.update(self.env_overrides)
        return env

    def start_sandboxes(self) -> Stack:
        self.capillary_url = self._listen("capillary", lambda port: [
            sys.executable, "-m", "sandboxes.capillary", "--host", "127.0.0.1",
            "--port", str(port), "--org", self.org], "listening on")[1]
        line_channels = json.loads(channels_json())
        for channel in line_channels:
            channel["verified"] = self.line_verified
        self.line_url = self._listen("line", lambda port: [
            sys.executable, "-m", "sandboxes.line", "--host", "127.0.0.1", "--port", str(port),
            "--channels", json.dumps(line_channels), "--endpoint-propagation-seconds",
            str(self.endpoint_propagation_seconds)], "listening on")[1]
        return self

    def start_web(self) -> Proc:
        proc, self.web_url = self._listen("web", lambda port: [
            sys.executable, "-m", "gunicorn", "app:create_app()", "--bind", f"127.0.0.1:{port}",
            "--workers", "2", "--threads", "4", "--no-control-socket"], "Listening at:")
        return proc

    def start_worker(self, concurrency: int = 2, queues: str | None = None,
                     extra_env: dict[str, str] | None = None) -> Proc:
        name = f"worker-{uuid.uuid4().hex[:6]}"
        proc = self._spawn(name, [
            sys.executable, "-m", "celery", "-A", "workers.celery_app", "worker",
            "--loglevel", "INFO", *(["-Q", queues] if queues else []),
            "--concurrency", str(concurrency),
            "-n", f"{name}@%h", "--without-gossip", "--without-mingle",
        ], extra_env)
        wait_until(lambda: "ready." in proc.log() or not proc.alive(), 30, 0.2, "worker ready")
        assert proc.alive(), proc.log()[-3000:]
        return proc

    @contextmanager
    def running(self) -> Iterator[Stack]:
        """Sandboxes, web and worker up for the block (a fixture's yield), all stopped after."""
        try:
            self.start_sandboxes()
            self.start_web()
            self.start_worker()
            yield self
        finally:
            self.stop()

    def start_beat(self, extra_env: dict[str, str] | None = None) -> Proc:
        """A beat process as the Procfile starts it (it may stand by: another holds the lease)."""
        name = f"beat-{uuid.uuid4().hex[:6]}"
        proc = self._spawn(name, [
            sys.executable, "-m", "celery", "-A", "workers.celery_app", "beat",
            "--scheduler", "workers.beat:LeasedScheduler", "--loglevel", "INFO",
        ], extra_env)
        wait_until(lambda: "beat schedule:" in proc.log() or not proc.alive(), 30, 0.2,
                   "beat started")
        assert proc.alive(), proc.log()[-3000:]
        return proc

    def line_requests(self, path: str) -> list[dict]:
        """What linecap asked the fake LINE platform on `path`."""
        found = requests.get(self.line_url + "/sandbox/requests", timeout=5).json()["requests"]
        return [r for r in found if r["path"] == path]

    def befriend(self, user_id: str) -> None:
        """The user adds the account and LINE sends no webhook (it never arrives)."""
        response = requests.post(self.line_url + "/sandbox/follow", timeout=5, json={
            "channel_id": CHANNEL_ID, "user_id": user_id, "deliver": False})
        response.raise_for_status()

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()

    def logs(self) -> str:
        return "\n".join(f"===== {p.name}\n{p.log()[-4000:]}" for p in self.procs)

    def _spawn(self, name: str, argv: list[str], extra_env: dict[str, str] | None = None) -> Proc:
        env = self.env()
        env.update(extra_env or {})
        proc = Proc(name, argv, env, self.log_dir)
        self.procs.append(proc)
        return proc

    def _listen(self, name: str, argv: Callable[[int], list[str]],
                banner: str) -> tuple[Proc, str]:
        """Start a server on a free port; ready once its own log says it listens and it answers.

        On a busy machine another program can take the port between free_port() and the bind,
        and then answer our health check: only the server's banner (printed once bound) shows
        that the port is ours. A server that could not bind is started again on another port.
        """
        for _ in range(3):
            port = free_port()
            proc = self._spawn(name, argv(port))
            wait_until(lambda proc=proc: banner in proc.log() or not proc.alive(), 30, 0.05,
                       f"{name} listening")
            if proc.alive():
                url = f"http://127.0.0.1:{port}"
                self._wait_http(url + "/healthz", proc)
                return proc, url
            self.procs.remove(proc)
            proc.stop()
        raise AssertionError(f"{name} could not listen on a free port:\n{proc.log()[-3000:]}")

    def _wait_http(self, url: str, proc: Proc | None = None) -> None:
        def up() -> bool:
            if proc is not None and not proc.alive():
                raise AssertionError(f"{proc.name} died:\n{proc.log()[-3000:]}")
            try:
                return requests.get(url, timeout=1).status_code == 200
            except requests.RequestException:
                return False

        wait_until(up, 20, 0.1, url)

    # -- talking to the pieces -----------------------------------------------------------
    def send(self, events: list[dict], secret: str | None = None,
             path: str | None = None) -> requests.Response:
        body, headers = signed_body(events, **({"secret": secret} if secret else {}))
        return requests.post(self.web_url + (path or f"/webhooks/line/{CHANNEL_ID}"),
                             data=body, headers=headers, timeout=10)

    def console_webhook(self, url: str) -> None:
        """Set the channel's webhook as an operator does in the LINE console (the fake
        accepts http on loopback there; LINE's API takes https only)."""
        response = requests.post(self.line_url + "/sandbox/webhook-endpoint",
                                 json={"channel_id": CHANNEL_ID, "endpoint": url}, timeout=5)
        response.raise_for_status()

    def customers(self) -> list[dict]:
        response = requests.get(self.capillary_url + "/sandbox/customers", timeout=5)
        return response.json()["customers"]

    def customers_with(self, identifier_value: str) -> list[dict]:
        return [c for c in self.customers() if any(
            ident.get("value") == identifier_value
            for profile in c["profiles"] for ident in profile.get("identifiers", []))]

    def calls(self) -> list[dict]:
        return requests.get(self.capillary_url + "/sandbox/calls", timeout=5).json()["calls"]

    def faults(self, **settings: Any) -> None:
        response = requests.post(self.capillary_url + "/sandbox/faults", json=settings, timeout=5)
        response.raise_for_status()

    def capillary_api(self, method: str, path: str, body: dict | None = None,
                      params: dict | None = None) -> requests.Response:
        digest = hashlib.md5(SANDBOX_PASSWORD.encode()).hexdigest()
        token = base64.b64encode(f"{SANDBOX_USER}:{digest}".encode()).decode()
        return requests.request(method, self.capillary_url + path, json=body, params=params,
                                headers={"Authorization": f"Basic {token}"}, timeout=5)

    def line_subscription(self, customer: dict, account_id: str) -> str | None:
        for sub in customer.get("subscriptions", []):
            if sub.get("channel") == "LINE" and sub.get("accountId") == account_id:
                return sub.get("type")
        return None


def dump(value: Any) -> str:
    return json.dumps(value, indent=1)[:4000]
