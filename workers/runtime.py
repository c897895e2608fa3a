"""The per-process objects a task uses (Redis, Capillary, LINE clients, stores), built once.

Built lazily and again after a fork, so a Celery prefork child never shares sockets with its
parent.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import redis

from config import LineChannel, Settings, load_settings
from core.capillary.client import CapillaryClient
from core.errors import ConfigurationError
from core.line.client import LineApiClient
from core.metrics import get_metrics
from core.store.connection import redis_client
from core.store.dead_letters import DeadLetterStore
from core.store.delayed_jobs import DelayedJobs
from core.store.history import HistoryStore
from core.store.rate_budget import SharedRateLimiter
from core.store.state import StateStore
from workers import journal


@dataclass
class Runtime:
    settings: Settings
    redis: redis.Redis
    limiter: SharedRateLimiter
    capillary: CapillaryClient
    line_api: LineApiClient
    state: StateStore
    dead_letters: DeadLetterStore
    history: HistoryStore | None = None  # None: one with the default retention

    def __post_init__(self) -> None:
        if self.history is None:
            self.history = HistoryStore.from_settings(self.redis, self.settings)

    @cached_property
    def delayed(self) -> DelayedJobs:
        """Jobs waiting in Redis to run again (retry backoffs, budget and lock waits)."""
        return DelayedJobs(self.redis)

    def channel(self, channel_id: str) -> LineChannel:
        """The configured channel; a job for another (removed since?) is a dead letter."""
        channel = self.settings.channel(channel_id)
        if channel is None:
            raise ConfigurationError(f"channel {channel_id} is not configured")
        return channel


def build_runtime(settings: Settings) -> Runtime:
    client = redis_client(settings.redis_url)
    metrics = get_metrics()
    limiter = SharedRateLimiter(client, settings.capillary_rate_limit_rpm,
                                max_inline_wait=settings.max_inline_budget_wait_seconds,
                                on_wait=metrics.rate_limit_wait,
                                group_limits=settings.group_rate_limits,
                                live_reserve=settings.live_reserve_percent / 100)
    return Runtime(
        settings=settings,
        redis=client,
        limiter=limiter,
        capillary=CapillaryClient.from_settings(
            settings, limiter, observe=both(metrics.capillary_call, journal.capillary_call)),
        line_api=LineApiClient(settings.line_api_base_url),
        state=StateStore.from_settings(client, settings),
        dead_letters=DeadLetterStore(client, settings.dead_letter_ttl_seconds),
        history=HistoryStore.from_settings(client, settings),
    )


def both(*observers: Callable[[str, str, float], None]) -> Callable[[str, str, float], None]:
    """One `observe` callback for the Capillary transport that reports to each observer."""

    def observe(endpoint: str, status: str, seconds: float) -> None:
        for observer in observers:
            observer(endpoint, status, seconds)

    return observe


_runtime: Runtime | None = None
_runtime_pid: int | None = None


def get_runtime() -> Runtime:
    global _runtime, _runtime_pid
    if _runtime is None or _runtime_pid != os.getpid():
        _runtime = build_runtime(load_settings())
        _runtime_pid = os.getpid()
    return _runtime


def set_runtime(runtime: Runtime | None) -> None:
    """Tests hand in a runtime built on fakes."""
    global _runtime, _runtime_pid
    _runtime, _runtime_pid = runtime, os.getpid() if runtime else None
