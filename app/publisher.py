"""Hand verified events to Celery (workers.messages says how they are carried).

Publishing does not retry: when the broker cannot take a message the receiver answers 503 at
once, and LINE redelivers the whole request (duplicates are dropped by the worker).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from workers.messages import is_broker_error, send_events, send_fan_out


class BrokerUnavailable(Exception):
    """The broker refused or did not answer; nothing can be promised to LINE."""


class CeleryEventPublisher:
    """Publishes through Celery; after a broker failure, checks the broker first for a while.

    kombu's Redis connections retry a refused connection with backoff (about 6 s here), which
    would hold every gunicorn thread for that long during an outage. After one failure, each
    request first asks `probe` (a Redis PING without retries); while that fails the answer is
    an immediate 503, and the first success closes the circuit again.
    """

    def __init__(self, celery_app, probe: Callable[[], object] | None = None,
                 suspect_seconds: float = 30.0) -> None:
        self._celery = celery_app
        self._probe = probe
        self._suspect_seconds = suspect_seconds
        self._suspect_until = 0.0

    def publish(self, channel_id: str, batch: list[dict[str, Any]]) -> None:
        if self._probe is not None and time.monotonic() < self._suspect_until:
            try:
                self._probe()
            except Exception as exc:  # any failure to reach the broker: do not try to publish
                raise BrokerUnavailable(type(exc).__name__) from None
            self._suspect_until = 0.0
        try:
            self._send(channel_id, batch)
        except BrokerUnavailable:
            self._suspect_until = time.monotonic() + self._suspect_seconds
            raise

    def _send(self, channel_id: str, batch: list[dict[str, Any]]) -> None:
        """One event: its own message. Several: one fan-out message that a worker splits, so
        the request's cost stays near that of one message (docs/BENCHMARKS.md).
        Either way it is one Redis round trip, and a failure is a 503 for the whole request."""
        if not batch:
            return
        try:
            if len(batch) == 1:
                send_events(self._celery, channel_id, batch)
            else:
                send_fan_out(self._celery, channel_id, batch)
        except Exception as exc:
            if is_broker_error(exc):
                raise BrokerUnavailable(type(exc).__name__) from None
            raise
