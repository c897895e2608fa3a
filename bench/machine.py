"""What the figures were measured on: the machine and the versions of everything in the path."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

import redis

PACKAGES = ("celery", "kombu", "redis", "gunicorn", "flask", "werkzeug", "requests", "uvloop",
            "py-spy")


def machine() -> dict[str, str]:
    cpu = next((line.split(":", 1)[1].strip() for line in _lines("/proc/cpuinfo")
                if line.startswith("model name")), platform.processor() or "unknown")
    mem_kib = next((int(line.split()[1]) for line in _lines("/proc/meminfo")
                    if line.startswith("MemTotal:")), 0)
    return {
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "memory": f"{mem_kib / 1024 / 1024:.1f} GiB",
        "kernel": platform.release(),
        "os": _os_name(),
    }


def versions(redis_client: redis.Redis, redis_binary: str) -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    found["redis-server"] = str(redis_client.info("server").get("redis_version"))
    found["redis-server binary"] = redis_binary
    found["linecap commit"] = _git("rev-parse", "--short", "HEAD")
    dirty = _git("status", "--porcelain", "--untracked-files=no")
    found["working tree"] = "uncommitted changes" if dirty else "clean"
    return found


def _lines(path: str) -> list[str]:
    try:
        return Path(path).read_text().splitlines()
    except OSError:
        return []


def _os_name() -> str:
    for line in _lines("/etc/os-release"):
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip('"')
    return platform.system()


def _git(*args: str) -> str:
    try:
        done = subprocess.run(["git", *args], cwd=Path(__file__).resolve().parents[1],
                              capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return done.stdout.strip() if done.returncode == 0 else "unknown"
