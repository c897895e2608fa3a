"""Scrape-time numbers that live in Redis, not in any process: queue depths, messages held by
workers, jobs waiting to run again, dead letters. Registered on the web's /metrics only, so
they are reported once.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import redis
from kombu.transport.redis import PRIORITY_STEPS
from kombu.transport.redis import Channel as RedisChannel
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from core.store.dead_letters import INDEX as DEAD_LETTER_INDEX
from core.store.delayed_jobs import DUE as DELAYED_DUE
from core.store.delayed_jobs import MOVING as DELAYED_MOVING
from workers.registry import QUEUES


class RedisStateCollector(Collector):
    """One pipelined round trip per scrape; a Redis outage shows as linecap_redis_up 0."""

    def __init__(self, client: redis.Redis, queues: Iterable[str] = QUEUES) -> None:
        self._client = client
        self._queues = tuple(queues)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        up = GaugeMetricFamily("linecap_redis_up", "1 when Redis answered this scrape.")
        try:
            depths, unacked, waiting, dead_letters = self._read()
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

    def _read(self) -> tuple[dict[str, int], int, int, int]:
        pipe = self._client.pipeline(transaction=False)
        for queue in self._queues:
            for key in _queue_keys(queue):
                pipe.llen(key)
        pipe.hlen(RedisChannel.unacked_key)
        pipe.zcard(DELAYED_DUE)
        pipe.zcard(DELAYED_MOVING)
        pipe.zcard(DEAD_LETTER_INDEX)
        answers = pipe.execute()
        per_queue = len(PRIORITY_STEPS)
        depths = {queue: sum(answers[i * per_queue:(i + 1) * per_queue])
                  for i, queue in enumerate(self._queues)}
        unacked, due, moving, dead_letters = (int(n) for n in answers[-4:])
        return depths, unacked, due + moving, dead_letters


def _queue_keys(queue: str) -> list[str]:
    """kombu keeps one Redis list per priority step; unprioritised messages use the bare name."""
    return [queue if step == 0 else f"{queue}{RedisChannel.sep}{step}" for step in PRIORITY_STEPS]
