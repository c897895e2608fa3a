"""Bad configuration stops each real process at start-up with one line naming the variable."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.helpers import base_env
from tests.integration.stack import ROOT

COMMANDS = {
    "web": [sys.executable, "-m", "gunicorn", "app:create_app()", "--bind", "127.0.0.1:0",
            "--no-control-socket"],
    "worker": [sys.executable, "-m", "celery", "-A", "workers.celery_app", "worker",
               "--concurrency", "1"],
    "flower": [sys.executable, "-m", "workers.flower"],
}


@pytest.mark.parametrize("process", sorted(COMMANDS))
def test_missing_channel_configuration_is_named(process):
    env = {**base_env(FLOWER_BASIC_AUTH="ops:pw"), "PATH": "/usr/bin:/bin"}
    del env["LINE_CHANNELS"]
    result = subprocess.run(COMMANDS[process], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.startswith("linecap:")]
    assert lines == ["linecap: configuration error: LINE_CHANNELS is not set "
                     "(or LINE_CHANNEL_ID and friends)"], result.stderr[-2000:]
    assert "Traceback" not in result.stderr
