"""Fault injection and the sandbox's own per-minute rate limit.

Clients must survive what Capillary does under load: 429s (with or without Retry-After),
5xx before a write, 5xx *after* a write, and slow responses. Random faults use a seeded
``random.Random`` so a benchmark run can be replayed.
"""

from __future__ import annotations

import math
import random
import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .config import SandboxConfig

WINDOW_SECONDS = 60.0
_FAIL_NEXT_KEYS = frozenset(
    {"status", "path_contains", "method", "count", "after_write", "sleep_ms"}
)


@dataclass
class FaultDecision:
    """What the pipeline must do with one call before (and after) its handler runs."""

    metered: bool = False  # counted in the rate-limit window
    reject_status: int | None = None  # answer now, handler never runs
    retry_after: int | None = None  # Retry-After header value for a rejection
    message: str = ""
    after_write_status: int | None = None  # run the handler, then answer with this status
    sleep_ms: int = 0


def parse_fail_next(entries: Any) -> list[dict[str, Any]]:
    """Validate one-shot fault entries; ValueError on anything malformed."""
    if not isinstance(entries, list):
        raise ValueError("fail_next must be a list")
    parsed = []
    for raw in entries:
        if not isinstance(raw, dict) or set(raw) - _FAIL_NEXT_KEYS:
            raise ValueError(f"fail_next entries take only {sorted(_FAIL_NEXT_KEYS)}")
        status, sleep_ms = raw.get("status"), raw.get("sleep_ms", 0)
        count = raw.get("count", 1)
        if status is not None and (
            isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599
        ):
            raise ValueError("fail_next status must be an HTTP status")
        if isinstance(sleep_ms, bool) or not isinstance(sleep_ms, int) or sleep_ms < 0:
            raise ValueError("fail_next sleep_ms must be a non-negative integer")
        if status is None and not sleep_ms:
            raise ValueError("fail_next entry needs a status or sleep_ms")
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError("fail_next count must be a positive integer")
        method = raw.get("method")
        parsed.append(
            {
                "status": status,
                "path_contains": str(raw.get("path_contains") or ""),
                "method": method.upper() if isinstance(method, str) else None,
                "count": count,
                "after_write": bool(raw.get("after_write", False)),
                "sleep_ms": sleep_ms,
            }
        )
    return parsed


class FaultInjector:
    """Sliding-window limiter + one-shot queue + seeded random faults, under one lock."""

    def __init__(self, seed: int = 0, fail_next: Iterable[dict[str, Any]] = ()) -> None:
        self._lock = threading.Lock()
        self.reset(seed, fail_next)

    def reset(self, seed: int, fail_next: Iterable[dict[str, Any]] = ()) -> None:
        """Back to a fresh window, RNG and queue."""
        with self._lock:
            self._rng = random.Random(seed)
            self._window: deque[float] = deque()
            self._group_windows: dict[str, deque[float]] = {}
            self._fail_next = parse_fail_next(list(fail_next))

    def reseed(self, seed: int) -> None:
        """Restart the random fault sequence."""
        with self._lock:
            self._rng = random.Random(seed)

    def set_fail_next(self, entries: list[dict[str, Any]]) -> None:
        """Replace the one-shot queue (entries already validated by parse_fail_next)."""
        with self._lock:
            self._fail_next = [dict(e) for e in entries]

    def pending_fail_next(self) -> list[dict[str, Any]]:
        """One-shot faults not yet consumed."""
        with self._lock:
            return [dict(e) for e in self._fail_next]

    def _take_fail_next(self, method: str, path: str) -> dict[str, Any] | None:
        for entry in self._fail_next:
            if entry["method"] not in (None, method) or entry["path_contains"] not in path:
                continue
            entry["count"] -= 1
            if entry["count"] <= 0:
                self._fail_next.remove(entry)
            return dict(entry)
        return None

    def _retry_after(self, config: SandboxConfig, wait: float = 0.0) -> int | None:
        if not config.retry_after_header:
            return None
        return max(config.retry_after_seconds, math.ceil(wait))

    def _over_budget(self, window: deque[float], limit: int | None, now: float) -> float | None:
        """Seconds until `window` has room under `limit`, or None when it has room now."""
        while window and window[0] <= now - WINDOW_SECONDS:
            window.popleft()
        if limit is not None and len(window) >= limit:
            return window[0] + WINDOW_SECONDS - now
        return None

    def admit(
        self, config: SandboxConfig, now: float, method: str, path: str, *, metered: bool,
        group: str | None = None,
    ) -> FaultDecision:
        """Decide one authenticated call: rate limits (the whole key's, then its API group's,
        reference § Rate limits: "per API key ... they vary by API") → fail_next → random
        429 → random 5xx."""
        with self._lock:
            if metered:
                group_window = self._group_windows.setdefault(group or "", deque())
                wait = self._over_budget(self._window, config.rpm_limit, now)
                if wait is None:
                    wait = self._over_budget(group_window, config.org.budgets.get(group or ""),
                                             now)
                if wait is not None:
                    return FaultDecision(
                        reject_status=429,
                        retry_after=self._retry_after(config, wait),
                        message="Rate limit exceeded",
                    )
                self._window.append(now)
                group_window.append(now)
            decision = FaultDecision(metered=metered, sleep_ms=config.latency_ms)
            entry = self._take_fail_next(method, path)
            if entry is not None:
                decision.sleep_ms += entry["sleep_ms"]
                status = entry["status"]
                if status is not None and entry["after_write"]:
                    decision.after_write_status = status
                elif status is not None:
                    decision.reject_status = status
                    decision.message = "Injected fault"
                if status == 429:
                    decision.retry_after = self._retry_after(config)
                    decision.message = "Rate limit exceeded"
                return decision
            if not metered:
                return decision
            if config.rate_429 > 0 and self._rng.random() < config.rate_429:
                decision.reject_status = 429
                decision.retry_after = self._retry_after(config)
                decision.message = "Rate limit exceeded"
            elif config.error_rate > 0 and self._rng.random() < config.error_rate:
                decision.reject_status = self._rng.choice(config.error_statuses)
                decision.message = "Injected fault"
            return decision
