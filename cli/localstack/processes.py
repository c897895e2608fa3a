"""Child processes for `linecap up`, supervised the way honcho/foreman do it.

Each child runs in its own process group, so a Ctrl-C in the terminal reaches only the supervisor,
which then stops the children itself, in reverse start order. Their output is streamed line by
line with a padded name in front (`web    | ...`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from typing import TextIO

from cli.localstack.ports import port_in_use
from cli.localstack.process_safety import die_with_parent

_COLORS = ("36", "33", "32", "35", "34", "31", "96", "93")


class ReadinessError(RuntimeError):
    """A child did not become ready in time, or died while we waited."""


class ChildProcess:
    """One supervised command; `stop()` sends SIGTERM, then SIGKILLs its group after a timeout."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        stop_timeout: float = 10.0,
        write_line: Callable[[str, str], None] | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.stop_timeout = stop_timeout
        self._write_line = write_line or (lambda name, line: print(f"{name} | {line}"))
        self._proc: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def returncode(self) -> int | None:
        return self.poll()

    def start(self) -> ChildProcess:
        self._proc = subprocess.Popen(
            self.argv,
            env=self.env,
            cwd=self.cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent(),
        )
        self._reader = threading.Thread(target=self._pump, name=f"out-{self.name}", daemon=True)
        self._reader.start()
        return self

    def poll(self) -> int | None:
        return self._proc.poll() if self._proc else None

    def wait(self, timeout: float | None = None) -> int | None:
        """The exit code, or None if still running after `timeout` seconds."""
        if self._proc is None:
            return None
        try:
            code = self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        self._join_reader()
        return code

    def stop(self, timeout: float | None = None) -> int | None:
        """Ask the main process to stop (SIGTERM), then kill the whole group if it lingers."""
        if self._proc is None:
            return None
        if self._proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.send_signal(signal.SIGTERM)
        try:
            code = self._proc.wait(self.stop_timeout if timeout is None else timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            code = self._proc.wait()
        # Anything the child left behind in its group (a worker it forked) goes too. Safe: the
        # group id cannot be reused while any of its members lives.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._proc.pid, signal.SIGKILL)
        self._join_reader()
        return code

    def kill(self) -> None:
        """SIGKILL the child's whole process group (its workers too)."""
        if self._proc is None or self._proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._proc.pid, signal.SIGKILL)

    def _join_reader(self) -> None:
        if self._reader is not None:
            self._reader.join(timeout=2.0)  # let the last lines of output through

    def _pump(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for raw in iter(self._proc.stdout.readline, b""):
            self._write_line(self.name, raw.decode("utf-8", "replace").rstrip("\r\n"))
        self._proc.stdout.close()


class ProcessGroup:
    """Children started in order, watched together, stopped in reverse order."""

    def __init__(
        self, output: TextIO | None = None, width: int = 6, color: bool | None = None
    ) -> None:
        self.output = output if output is not None else sys.stdout
        self.width = width
        if color is None:
            color = hasattr(self.output, "isatty") and self.output.isatty()
            color = color and "NO_COLOR" not in os.environ
        self.color = color
        self.children: list[ChildProcess] = []
        self._lock = threading.Lock()
        self._colors: dict[str, str] = {}

    def start(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        stop_timeout: float = 10.0,
    ) -> ChildProcess:
        """Start a child whose output is prefixed with `name`; it is stopped by `stop()`."""
        child = ChildProcess(
            name, argv, env=env, cwd=cwd, stop_timeout=stop_timeout, write_line=self.write_line
        )
        self._colors.setdefault(name, _COLORS[len(self._colors) % len(_COLORS)])
        child.start()
        self.children.append(child)
        self.write_line(name, f"started (pid {child.pid})")
        return child

    def write_line(self, name: str, line: str) -> None:
        """Write one prefixed line; safe from any thread."""
        prefix = f"{name:<{self.width}} |"
        if self.color:
            prefix = f"\033[{self._colors.get(name, '0')}m{prefix}\033[0m"
        with self._lock:
            self.output.write(f"{prefix} {line}\n")
            self.output.flush()

    def write_block(self, text: str) -> None:
        """Write unprefixed text (a banner) without interleaving children's lines."""
        with self._lock:
            self.output.write(text if text.endswith("\n") else text + "\n")
            self.output.flush()

    def exited(self) -> ChildProcess | None:
        """The first child that is no longer running, if any."""
        return next((c for c in self.children if c.poll() is not None), None)

    def stop(self, timeout: float | None = None) -> None:
        """Stop every running child, last started first."""
        for child in reversed(self.children):
            running = child.poll() is None
            if running:
                self.write_line(child.name, "stopping")
            code = child.stop(timeout)
            if running and code not in (None, 0, -signal.SIGTERM):
                self.write_line(child.name, f"stopped ({describe_exit(code)})")

    def supervise(self, stop: StopSignals, extra: Callable[[], str | None] | None = None) -> str:
        """Block until a stop is asked (returns "") or something dies (returns what, and how).

        Any exit counts as a death: these children are meant to run until we stop them.
        `extra` is polled too, for things that are not children (an embedded Redis).
        """
        while not stop.wait(0.25):
            child = self.exited()
            if child is not None:
                code = child.wait(timeout=0) or 0  # also lets its last lines through first
                reason = f"{child.name} exited unexpectedly ({describe_exit(code)})"
                self.write_line(child.name, reason)
                return reason
            reason = extra() if extra is not None else None
            if reason:
                return reason
        return ""

    def kill(self) -> None:
        """SIGKILL everything at once (a second Ctrl-C)."""
        for child in reversed(self.children):
            child.kill()


class StopSignals:
    """SIGINT/SIGTERM/SIGHUP ask for a clean stop; a second one calls `on_repeat` (kill all).

    Handlers are only installed from the main thread (Python allows no other); `restore()` puts
    the previous ones back.
    """

    def __init__(self, on_repeat: Callable[[], None] | None = None) -> None:
        self._event = threading.Event()
        self._on_repeat = on_repeat
        self._old: dict[int, object] = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                self._old[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum: int, frame: object) -> None:
        if self._event.is_set() and self._on_repeat is not None:
            self._on_repeat()
        self._event.set()

    def set(self) -> None:
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout: float) -> bool:
        return self._event.wait(timeout)

    def restore(self) -> None:
        for sig, handler in self._old.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
        self._old.clear()


def describe_exit(code: int) -> str:
    """`exit code 3` or `killed by SIGKILL`, for humans."""
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def wait_until(
    check: Callable[[], bool],
    what: str,
    timeout: float = 15.0,
    child: ChildProcess | None = None,
    abort: Callable[[], bool] | None = None,
    interval: float = 0.1,
) -> None:
    """Poll `check` until it is true; raise ReadinessError naming `what` on timeout or death."""
    deadline = time.monotonic() + timeout
    while True:
        if abort is not None and abort():
            raise ReadinessError(f"interrupted while waiting for {what}")
        code = child.poll() if child is not None else None
        if child is not None and code is not None:
            raise ReadinessError(f"{child.name} exited ({describe_exit(code)}) before {what}")
        if check():
            return
        if time.monotonic() >= deadline:
            raise ReadinessError(f"{what} did not answer within {timeout:g}s")
        time.sleep(interval)


def http_ok(url: str) -> Callable[[], bool]:
    """A check that `GET url` answers 2xx."""

    def check() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=1.0) as response:
                return 200 <= response.status < 300
        except (urllib.error.URLError, OSError, ValueError):
            return False

    return check


def port_open(port: int, host: str = "127.0.0.1") -> Callable[[], bool]:
    """A check that something accepts TCP connections on host:port."""
    return lambda: port_in_use(port, host)
