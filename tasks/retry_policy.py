"""When to try a failed event again: exponential backoff with full jitter, up to a horizon."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Attempts:
    """Failures so far for one event, carried in the retried message itself."""

    failures: int = 0
    first_failure_at: float | None = None

    @classmethod
    def from_kwargs(cls, data: dict | None) -> Attempts:
        data = data or {}
        return cls(int(data.get("failures", 0)), data.get("first_failure_at"))

    def to_kwargs(self) -> dict:
        return {"failures": self.failures, "first_failure_at": self.first_failure_at}

    def failed(self, now: float | None = None) -> Attempts:
        now = time.time() if now is None else now
        return Attempts(self.failures + 1, self.first_failure_at or now)


def backoff_seconds(failures: int, max_delay: float, base: float = 2.0,
                    retry_after: float | None = None, rng: random.Random | None = None) -> float:
    """Full-jitter exponential backoff, never sooner than the server's Retry-After."""
    rng = rng or random
    ceiling = min(max_delay, base * (2 ** max(failures - 1, 0)))
    delay = rng.uniform(ceiling / 2, ceiling)
    if retry_after is not None:
        delay = max(delay, retry_after + rng.uniform(0, 1))
    return min(delay, max_delay)


def horizon_passed(attempts: Attempts, horizon_seconds: float, now: float | None = None) -> bool:
    if attempts.first_failure_at is None:
        return False
    now = time.time() if now is None else now
    return now - attempts.first_failure_at >= horizon_seconds
