"""Install what the bench needs beyond linecap itself, into the running venv, with pip.

uvloop keeps the load tool's own overhead low; py-spy samples the processes under test. Both
are wheels on PyPI, so a fresh machine needs nothing but network access to PyPI.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys

from bench.profiling import py_spy

BENCH_REQUIREMENTS = ("uvloop>=0.19", "py-spy>=0.3.14")


def missing() -> list[str]:
    wanted = []
    if importlib.util.find_spec("uvloop") is None:
        wanted.append(BENCH_REQUIREMENTS[0])
    if py_spy() is None:
        wanted.append(BENCH_REQUIREMENTS[1])
    return wanted


def ensure() -> None:
    """pip-install whatever is missing; raise SystemExit with pip's message if that fails."""
    wanted = missing()
    if not wanted:
        return
    print(f"bench: installing {', '.join(wanted)} into {sys.prefix}", flush=True)
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", *wanted],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"bench: pip install failed:\n{done.stderr[-2000:]}")
