"""Who used the CPU during a measurement: the bench's own processes, or something else.

The machine has 2 cores and may be shared (other test runs); each figure carries the CPU that
processes outside the bench used while it was taken, so a disturbed figure can be told apart.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")
_TICK = TICKS_PER_SECOND


def _busy_ticks() -> int:
    """All CPUs' non-idle time since boot (user, nice, system, irq, softirq, steal)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return user + nice + system + irq + softirq + steal


def _stat(pid: str) -> tuple[int, int] | None:
    """(parent pid, CPU ticks incl. reaped children) of one process, None if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[1]), sum(int(v) for v in fields[11:15])


def _tree_ticks(root: int) -> int:
    """CPU of `root` and every live descendant (exited ones are in their parent's counts)."""
    parents: dict[int, int] = {}
    ticks: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and (found := _stat(entry.name)) is not None:
            parents[int(entry.name)], ticks[int(entry.name)] = found
    total, ours = 0, {root}
    for pid in sorted(ticks):
        chain, cursor = [], pid
        while cursor not in ours and cursor in parents and cursor > 1:
            chain.append(cursor)
            cursor = parents[cursor]
        if cursor in ours:
            ours.update(chain)
    for pid in ours:
        total += ticks.get(pid, 0)
    return total


def process_ticks(pids: list[int]) -> int:
    """CPU ticks used so far by these processes (and the children they reaped)."""
    return sum(found[1] for pid in pids if (found := _stat(str(pid))) is not None)


def cores(ticks: int, seconds: float) -> float:
    return round(ticks / _TICK / max(seconds, 1e-6), 2)


class CpuWindow:
    """Cores used on average by the bench's process tree and by everything else."""

    def __init__(self) -> None:
        self.root = os.getpid()
        self.started = time.monotonic()
        self.busy = _busy_ticks()
        self.ours = _tree_ticks(self.root)
        self.result: dict[str, float] = {}

    def stop(self) -> dict[str, float]:
        seconds = max(time.monotonic() - self.started, 1e-6)
        busy = (_busy_ticks() - self.busy) / _TICK / seconds
        ours = (_tree_ticks(self.root) - self.ours) / _TICK / seconds
        self.result = {"seconds": round(seconds, 2), "busy_cores": round(busy, 2),
                       "bench_cores": round(ours, 2),
                       "other_cores": round(max(busy - ours, 0.0), 2)}
        return self.result


@contextmanager
def cpu_window() -> Iterator[CpuWindow]:
    window = CpuWindow()
    try:
        yield window
    finally:
        window.stop()
