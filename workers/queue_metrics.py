"""Scrape-time numbers that live in Redis, not in any process: queue depths, messages held by
workers, jobs waiting to run again, dead letters. Registered on the web's /metrics only, so
they are reported once.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator

import redis
from kombu.transport.redis import PRIORITY_STEPS
from kombu.transport.redis import Channel as RedisChannel
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from config.settings import DEFAULT_DEAD_LETTER_TTL_SECONDS
from core.store.dead_letters import INDEX as DEAD_LETTER_INDEX
from core.store.delayed_jobs import DUE as DELAYED_DUE
from core.store.delayed_jobs import MOVING as DELAYED_MOVING
from workers.registry import QUEUES


class RedisStateCollector(Collector):
    """One pipelined round trip per scrape; a Redis outage shows as linecap_redis_up 0."""

    def __init__(self, client: redis.Redis, queues: Iterable[str] = QUEUES,
                 dead_letter_ttl: int = DEFAULT_DEAD_LETTER_TTL_SECONDS,
                 budgets: Iterable[tuple[str, str, int]] = (),
                 window_ms: int = 61_000) -> None:
        """`budgets`: (name, Redis key, calls per minute) of each rate budget in use."""
        self._client = client
        self._queues = tuple(queues)
        self._dead_letter_ttl = dead_letter_ttl
        self._budgets = tuple(budgets)
        self._window_ms = window_ms

    def collect(self) -> Iterator[GaugeMetricFamily]:
        up = GaugeMetricFamily("linecap_redis_up", "1 when Redis answered this scrape.")
        try:
            depths, unacked, waiting, dead_letters, used = self._read()
        except redis.RedisError:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        depth = GaugeMetricFamily("linecap_queue_depth", "Messages waiting in a Celery queue.",
                                  labels=["queue"])
        for queue, count in depths.items():
            depth.add_metric([queue], count)
        yield depth
        yield GaugeMetricFamily(
            "linecap_messages_unacked",
            "Messages taken by workers and not yet acknowledged (running, or waiting for a "
            "pool process).", value=unacked)
        yield GaugeMetricFamily(
            "linecap_jobs_waiting",
            "Jobs waiting in Redis to run again (retry backoff, budget or user-lock wait).",
            value=waiting)
        yield GaugeMetricFamily("linecap_dead_letters", "Events in the dead-letter store.",
                                value=dead_letters)
        used_family = GaugeMetricFamily(
            "linecap_rate_budget_used", "Capillary calls in the current window, per budget.",
            labels=["budget"])
        limit_family = GaugeMetricFamily(
            "linecap_rate_budget_limit", "Calls per minute a budget allows.", labels=["budget"])
        for (name, _, limit), count in zip(self._budgets, used, strict=True):
            used_family.add_metric([name], count)
            limit_family.add_metric([name], limit)
        yield used_family
        yield limit_family

    def _read(self) -> tuple[dict[str, int], int, int, int, list[int]]:
        pipe = self._client.pipeline(transaction=False)
        for queue in self._queues:
            for key in _queue_keys(queue):
                pipe.llen(key)
        pipe.hlen(RedisChannel.unacked_key)
        pipe.zcard(DELAYED_DUE)
        pipe.zcard(DELAYED_MOVING)
        # Only entries that have not expired (the index is pruned lazily).
        pipe.zcount(DEAD_LETTER_INDEX, time.time() - self._dead_letter_ttl, "+inf")
        since = int(time.time() * 1000) - self._window_ms
        for _, key, _ in self._budgets:
            pipe.zcount(key, since, "+inf")
        answers = pipe.execute()
        per_queue = len(PRIORITY_STEPS)
        depths = {queue: sum(answers[i * per_queue:(i + 1) * per_queue])
                  for i, queue in enumerate(self._queues)}
        rest = [int(n) for n in answers[len(self._queues) * per_queue:]]
        unacked, due, moving, dead_letters = rest[:4]
        return depths, unacked, due + moving, dead_letters, rest[4:]


def queue_depth(client: redis.Redis, queue: str) -> int:
    """Messages waiting in one queue, all priority steps (one round trip)."""
    pipe = client.pipeline(transaction=False)
    for key in _queue_keys(queue):
        pipe.llen(key)
    return int(sum(pipe.execute()))


def _queue_keys(queue: str) -> list[str]:
    """kombu keeps one Redis list per priority step; unprioritised messages use the bare name."""
    return [queue if step == 0 else f"{queue}{RedisChannel.sep}{step}" for step in PRIORITY_STEPS]
