"""Ordered log of every API call, rejected ones included, and the stats derived from it.

Tests and benchmarks judge clients by what reached "Capillary": retries, duplicates and
whether the client kept under the per-minute budget (``max_calls_in_any_60s_window``).
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

from .faults import WINDOW_SECONDS


def max_in_window(timestamps: list[float], window: float = WINDOW_SECONDS) -> int:
    """Largest number of timestamps inside any half-open window of ``window`` seconds."""
    ordered = sorted(timestamps)
    best, start = 0, 0
    for end, ts in enumerate(ordered):
        while ts - ordered[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


class CallLog:
    """Append-only call records; ``seq`` follows completion order, ``ts`` is arrival time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Forget every call; seq starts again at 1."""
        with self._lock:
            self._calls: list[dict[str, Any]] = []

    def append(self, record: dict[str, Any]) -> dict[str, Any]:
        """Store a record (keys: ts, method, path, route, query, status, source, body, metered)."""
        with self._lock:
            entry = {"seq": len(self._calls) + 1, **record}
            self._calls.append(entry)
            return entry

    def since(self, seq: int = 0) -> list[dict[str, Any]]:
        """Records with a seq greater than ``seq``."""
        with self._lock:
            return [dict(c) for c in self._calls[max(seq, 0) :]]

    def stats(self) -> dict[str, Any]:
        """Counts per (method, route, status) and the busiest 60 s of metered calls."""
        with self._lock:
            calls = list(self._calls)
        counts = Counter((c["method"], c["route"], c["status"]) for c in calls)
        metered = [c["ts"] for c in calls if c["metered"]]
        return {
            "total_calls": len(calls),
            "metered_calls": len(metered),
            "by_endpoint": [
                {"method": m, "path": p, "status": s, "count": n}
                for (m, p, s), n in sorted(counts.items())
            ],
            "max_calls_in_any_60s_window": max_in_window(metered),
        }
