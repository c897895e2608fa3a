"""The embedded Redis keeps its data across restarts and crashes, and fails with readable errors."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from cli.localstack.embedded_redis import (
    EmbeddedRedis,
    EmbeddedRedisError,
    find_redis_server,
)
from cli.localstack.ports import port_in_use

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def _alive(pid: int) -> bool:
    """Running (a zombie left for a non-reaping PID 1 counts as dead)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except FileNotFoundError:
        return False
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True


def _wait_dead(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_find_redis_server_gives_a_runnable_binary():
    out = subprocess.run([find_redis_server(), "--version"], capture_output=True, text=True)
    assert out.returncode == 0
    assert "Redis server" in out.stdout


def test_data_survives_a_graceful_restart(tmp_path):
    with EmbeddedRedis(tmp_path / "redis") as server:
        assert server.url == f"redis://127.0.0.1:{server.port}/0"
        client = server.client()
        client.set("greeting", "hello")
        client.rpush("queue", "e1", "e2", "e3")
        port, first_pid = server.port, server.pid
        server.restart()
        assert server.port == port and server.pid != first_pid
        client = server.client()
        assert client.get("greeting") == "hello"
        assert client.lrange("queue", 0, -1) == ["e1", "e2", "e3"]
    assert not port_in_use(port)
    assert (tmp_path / "redis" / "appendonly.aof").exists()
    assert (tmp_path / "redis" / "redis.log").exists()


def test_kill_9_loses_nothing_with_appendfsync_always(tmp_path):
    server = EmbeddedRedis(tmp_path / "redis", appendfsync="always", save="").start()
    try:
        server.client().set("event:1", "queued")
        pid = server.pid
        server.kill()
        assert not _alive(pid)
        server.start()
        assert server.client().get("event:1") == "queued"
    finally:
        server.stop()


def test_port_in_use_is_a_readable_error(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(EmbeddedRedisError, match=f"port {port} .* already in use"):
            EmbeddedRedis(tmp_path, port=port).start()


def test_a_server_that_exits_at_start_shows_its_log(tmp_path):
    with socket.socket() as bound_not_listening:  # the pre-check passes, redis' bind() fails
        bound_not_listening.bind(("127.0.0.1", 0))
        port = bound_not_listening.getsockname()[1]
        with pytest.raises(EmbeddedRedisError) as err:
            EmbeddedRedis(tmp_path, port=port).start()
    message = str(err.value)
    assert "exited with code" in message
    assert "Address already in use" in message
    assert str(tmp_path / "redis.log") in message


def test_a_bad_binary_is_a_readable_error(tmp_path):
    with pytest.raises(EmbeddedRedisError, match="cannot run redis-server '/nonexistent/redis'"):
        EmbeddedRedis(tmp_path, executable="/nonexistent/redis").start()
    with pytest.raises(EmbeddedRedisError, match="exited with code 1"):
        EmbeddedRedis(tmp_path, executable="/bin/false").start()


def test_appendfsync_is_validated(tmp_path):
    with pytest.raises(ValueError, match="appendfsync"):
        EmbeddedRedis(tmp_path, appendfsync="sometimes")


def _run_child(tmp_path: Path, body: str) -> subprocess.Popen[str]:
    code = textwrap.dedent(f"""
        import sys, time
        from cli.localstack.embedded_redis import EmbeddedRedis
        server = EmbeddedRedis({str(tmp_path)!r}).start()
        print(server.pid, flush=True)
        {body}
    """)
    return subprocess.Popen(
        [sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )


def test_a_program_that_forgets_to_stop_leaves_no_orphan(tmp_path):
    child = _run_child(tmp_path, "sys.exit(0)")
    out, _ = child.communicate(timeout=30)
    assert child.returncode == 0
    assert _wait_dead(int(out.strip()))


@pytest.mark.skipif(sys.platform != "linux", reason="parent-death signal is Linux-only")
def test_a_killed_parent_takes_its_server_along(tmp_path):
    child = _run_child(tmp_path, "time.sleep(60)")
    try:
        redis_pid = int(child.stdout.readline())
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
        assert _wait_dead(redis_pid)
    finally:
        child.kill()
        child.wait()
