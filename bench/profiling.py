"""Sampling profiles with py-spy, boiled down to a table of where the samples went.

py-spy attaches to a running process (no change to the code under test) and records every
thread's stack; idle threads are left out, so the percentages are of busy time.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")


def py_spy() -> str | None:
    found = Path(sys.executable).with_name("py-spy")
    return str(found) if found.exists() else shutil.which("py-spy")


def record(pid: int, seconds: float, out: Path, rate: int = 250) -> subprocess.Popen | None:
    """Start recording `pid` for `seconds` in the background; None when py-spy is missing."""
    binary = py_spy()
    if binary is None:
        return None
    argv = [binary, "record", "--pid", str(pid), "--duration", str(max(1, round(seconds))),
            "--rate", str(rate), "--format", "raw", "--output", str(out), "--nonblocking", "--gil"]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _frame_name(frame: str) -> str:
    match = _FRAME.match(frame.strip())
    if not match:
        return frame.strip()
    path = match["file"]
    for marker in ("site-packages/", "/lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    else:
        path = path.split("/main/", 1)[-1]
    return f"{match['func']} ({path})"


# Frames every sample passes through (process start-up, thread and pool plumbing): left out of
# the inclusive table, which is about where the work is.
_PLUMBING = ("threading.py", "concurrent/futures/thread.py", "<frozen runpy>", "click/",
             "billiard/process.py", "billiard/popen_fork.py", "billiard/context.py",
             "billiard/pool.py", "celery/bin/", "celery/__main__.py", "celery/concurrency/",
             "gunicorn/arbiter.py", "gunicorn/app/", "gunicorn/__main__.py",
             "gunicorn/workers/base.py", "celery/worker/worker.py", "celery/bootsteps.py",
             "celery/app/trace.py")


def summarize(paths: list[Path], top: int = 40) -> dict:
    """Inclusive and self shares of the busiest functions over one or more raw py-spy files."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for path in paths:
        if not path.exists():
            continue
        for line in path.read_text(errors="replace").splitlines():
            stack, _, count_text = line.rpartition(" ")
            if not stack or not count_text.isdigit():
                continue
            count = int(count_text)
            frames = [_frame_name(f) for f in stack.split(";")]
            frames = [f for f in frames if not f.startswith("process ")
                      and not f.startswith("thread ")]
            if not frames:
                continue
            total += count
            own[frames[-1]] += count
            for name in set(frames):
                if not any(marker in name for marker in _PLUMBING):
                    inclusive[name] += count
    def share(counter: Counter[str]) -> list[list]:
        return [[name, round(100.0 * n / total, 1)] for name, n in counter.most_common(top)]

    return {"samples": total, "inclusive": share(inclusive) if total else [],
            "self": share(own) if total else []}
