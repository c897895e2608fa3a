"""Child processes of the bench: each in its own process group, output in a log file.

Every process is stopped by its own id (the group it leads), never by name.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable


class BenchError(RuntimeError):
    """A piece of the bench did not start or behave; the message says which and why."""


class Proc:
    """One child process (and its group) with its output in `<log_dir>/<name>.log`."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.argv = argv
        self.log_path = log_dir / f"{name}.log"
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - lives as long as the process
        self.popen = subprocess.Popen(argv, cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                                      stdout=self._log, stderr=subprocess.STDOUT,
                                      start_new_session=True)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    def logged(self, text: str) -> bool:
        with open(self.log_path, "rb") as log:
            return text.encode() in log.read()

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM the group (a warm shutdown for gunicorn and Celery), SIGKILL if it hangs."""
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(10)
        self._log.close()


def wait_until(check: Callable[[], bool], what: str, timeout: float,
               proc: Proc | None = None, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if proc is not None and not proc.alive():
            raise BenchError(f"{proc.name} exited while waiting for {what}:\n{proc.log_tail()}")
        if time.monotonic() > deadline:
            tail = f":\n{proc.log_tail()}" if proc is not None else ""
            raise BenchError(f"timed out after {timeout:g}s waiting for {what}{tail}")
        time.sleep(interval)


def http_ok(url: str) -> Callable[[], bool]:
    def check() -> bool:
        try:
            return requests.get(url, timeout=1).status_code == 200
        except requests.RequestException:
            return False

    return check


def children(pid: int) -> list[int]:
    """Direct children of a process, from /proc (Linux)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found += [int(p) for p in (task / "children").read_text().split()]
    return sorted(set(found))


def memory_kib(pid: int) -> dict[str, int]:
    """RSS (what `ps` shows) and PSS (shared pages split among the processes sharing them)."""
    values: dict[str, int] = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                values["rss_kib"] = int(line.split()[1])
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                values["pss_kib"] = int(line.split()[1])
    return values
