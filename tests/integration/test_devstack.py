"""The `linecap up` supervisor: prefixed output, clean stops, deaths noticed; and its plan.

The full stack is not started here; its pieces are tested where they live.
"""

from __future__ import annotations

import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from cli.localstack.ports import free_port
from cli.localstack.processes import ProcessGroup, StopSignals, describe_exit
from cli.localstack.stack import StackOptions, build_banner, demo_channel, plan_stack, run_stack
from config import ConfigError
from core.line.signature import is_valid
from workers.beat import BEAT_ARGS

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
SLEEPER = "import time; print({!r}, flush=True); time.sleep(30)"


def _py(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def _wait_for(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.fixture
def group():
    out = io.StringIO()
    group = ProcessGroup(output=out, width=6, color=False)
    yield group
    group.stop(timeout=2)


@pytest.fixture
def stop():
    stop = StopSignals()
    yield stop
    stop.restore()


def test_output_is_prefixed_and_stop_ends_every_child(group):
    first = group.start("web", _py(SLEEPER.format("hi")))
    second = group.start("worker", _py(SLEEPER.format("ho")))
    _wait_for(lambda: "ho" in group.output.getvalue() and "hi" in group.output.getvalue())
    started = time.monotonic()
    group.stop()
    assert time.monotonic() - started < 5
    assert first.poll() == -signal.SIGTERM and second.poll() == -signal.SIGTERM
    lines = group.output.getvalue().splitlines()
    assert "web    | hi" in lines
    assert "worker | ho" in lines
    # stopped in reverse order
    assert lines.index("worker | stopping") < lines.index("web    | stopping")


def test_a_child_that_exits_non_zero_is_reported(group, stop):
    group.start("web", _py(SLEEPER.format("up")))
    group.start("worker", _py("print('boom', flush=True); raise SystemExit(3)"))
    reason = group.supervise(stop)
    assert reason == "worker exited unexpectedly (exit code 3)"
    assert group.exited().name == "worker"
    assert "worker | boom" in group.output.getvalue()
    assert group.children[0].poll() is None  # the others keep running until stop()


def test_supervise_returns_quietly_when_a_stop_is_asked(group, stop):
    group.start("web", _py(SLEEPER.format("up")))
    threading.Timer(0.3, stop.set).start()
    assert group.supervise(stop) == ""


def test_a_child_ignoring_sigterm_is_killed_after_its_timeout(group):
    code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    child = group.start("stubborn", _py(code + SLEEPER.format("ready")), stop_timeout=0.5)
    _wait_for(lambda: "ready" in group.output.getvalue())
    assert child.stop() == -signal.SIGKILL
    assert "killed by SIGKILL" in describe_exit(child.poll())


def test_stop_also_ends_what_a_child_left_in_its_group(group):
    child = group.start("shell", ["sh", "-c", "sleep 300 & echo $!; wait"])
    _wait_for(lambda: re.search(r"shell  \| (\d+)", group.output.getvalue()))
    grandchild = int(re.search(r"shell  \| (\d+)", group.output.getvalue()).group(1))
    child.stop(timeout=2)
    _wait_for(lambda: not _alive(grandchild), timeout=5)


def test_stop_signals_catch_sigterm_and_restore_the_old_handler():
    before = signal.getsignal(signal.SIGTERM)
    repeats = []
    stop = StopSignals(on_repeat=lambda: repeats.append(1))
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        _wait_for(stop.is_set, timeout=2)
        os.kill(os.getpid(), signal.SIGTERM)
        _wait_for(lambda: repeats, timeout=2)
    finally:
        stop.restore()
    assert signal.getsignal(signal.SIGTERM) is before


def test_the_plan_with_nothing_configured_runs_everything_locally(tmp_path):
    plan = plan_stack({}, tmp_path)
    names = [name for name, _, _ in plan.children]
    assert names == ["capillary", "line", "web", "worker", "beat", "flower"]
    argv = dict((name, argv) for name, argv, _ in plan.children)
    assert argv["capillary"][-2:] == ["--accounts", "demo-line-account"]
    assert json.loads(argv["line"][-1])[0]["channel_id"] == "1234567890"
    assert argv["worker"][-2:] == ["--concurrency", "4"]
    assert "-Q" not in argv["worker"], "a worker without -Q runs every queue of the registry"
    assert argv["beat"][-6:] == ["workers.celery_app", *BEAT_ARGS], "the Procfile's beat"
    assert plan.env["REDIS_URL"] == "redis://127.0.0.1:6390/0"
    assert plan.env["CAPILLARY_BASE_URL"] == "http://127.0.0.1:8091"
    assert plan.env["CAPILLARY_USERNAME"] == "sandbox-till"
    assert plan.env["LINE_API_BASE_URL"] == "http://127.0.0.1:8092"
    assert plan.children[-1][2]["LINECAP_LOCAL_MODE"] == "1"
    assert "LINECAP_LOCAL_MODE" not in plan.env
    assert plan.demo and plan.redis_port == 6390


def test_the_demo_channel_secret_persists_and_is_private(tmp_path):
    first = demo_channel(tmp_path)
    assert re.fullmatch(r"[0-9a-f]{32}", first["channel_secret"])
    assert demo_channel(tmp_path) == first
    assert (tmp_path / "demo-channel.json").stat().st_mode & 0o077 == 0


def test_real_services_are_used_as_given(tmp_path):
    env = {
        "REDIS_URL": "redis://:pw@redis.example:6379/0",
        "CAPILLARY_BASE_URL": "https://eu.api.capillarytech.com",
        "CAPILLARY_USERNAME": "till",
        "CAPILLARY_PASSWORD": "pw",
        "LINE_API_BASE_URL": "https://api.line.me",
        "LINE_CHANNELS": json.dumps(
            [
                {
                    "name": "shop",
                    "channel_id": "2000000001",
                    "channel_secret": "realsecret0123456789",
                    "access_token": "token",
                    "source_account_id": "acc-1",
                }
            ]
        ),
        "PORT": "9000",
    }
    plan = plan_stack(env, tmp_path)
    assert [name for name, _, _ in plan.children] == ["web", "worker", "beat", "flower"]
    assert plan.redis_port is None and not plan.demo
    banner = build_banner(plan)
    assert "realsecret" not in banner and "secret real…" in banner
    assert ":pw@" not in banner
    assert "http://127.0.0.1:9000/webhooks/line/2000000001" in banner
    assert not (tmp_path / "demo-channel.json").exists()


def test_the_banner_curl_is_correctly_signed(tmp_path):
    plan = plan_stack({}, tmp_path)
    banner = build_banner(plan, user_id="U" + "a" * 32)
    secret = demo_channel(tmp_path)["channel_secret"]
    assert secret in banner
    assert "linecap send-event follow --user U" + "a" * 32 in banner
    assert "http://127.0.0.1:8000/webhooks/line\n" not in banner
    assert "http://127.0.0.1:8000/webhooks/line  " in banner
    signature = re.search(r"X-Line-Signature: ([A-Za-z0-9+/=]+)'", banner).group(1)
    body = re.search(r"--data-raw '(.*)'", banner).group(1)
    assert is_valid(body.encode(), signature, secret)
    assert json.loads(body)["events"][0]["source"]["userId"] == "U" + "a" * 32


@pytest.mark.parametrize("name", ["PORT", "FLOWER_PORT", "LINECAP_REDIS_PORT"])
def test_a_bad_port_names_its_variable(tmp_path, name):
    with pytest.raises(ConfigError, match=name):
        plan_stack({name: "eighty"}, tmp_path)


def test_run_stack_refuses_a_busy_port_without_starting_anything(tmp_path, capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = {"PORT": str(port)}
        for name in ("LINECAP_REDIS_PORT", "LINECAP_SANDBOX_PORT", "LINECAP_LINE_SANDBOX_PORT"):
            env[name] = str(free_port())
        env["FLOWER_PORT"] = str(free_port())
        assert run_stack(StackOptions(state_dir=tmp_path, environ=env)) == 1
    assert f"port {port} (PORT) is already in use" in capsys.readouterr().err
    assert not (tmp_path / "redis").exists()


def test_dev_py_help_and_unknown_command():
    helped = subprocess.run([sys.executable, "dev.py", "--help"], cwd=ROOT, capture_output=True)
    assert helped.returncode == 0 and b"python3 dev.py COMMAND" in helped.stdout
    wrong = subprocess.run([sys.executable, "dev.py", "deploy"], cwd=ROOT, capture_output=True)
    assert wrong.returncode == 2 and b"unknown command" in wrong.stderr
