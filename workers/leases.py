"""A live worker keeps the messages it holds invisible to the others; a dead one stops.

kombu's Redis transport records each message a worker takes in its `unacked_index` sorted set,
scored by the time it was taken, and every worker's sweep puts back any message whose score is
older than the visibility timeout. A long run would then be handed to a second worker while
the first still works on it, so the timeout had to outlast the longest run, and a killed
worker's messages waited that long. Here the worker's main process moves the score of every
message it holds (waiting for a pool process, or running) to "now" a few times per timeout:
while the worker lives its messages never come back; once it dies they come back one timeout
after its last renewal, whatever the run length. The timeout can therefore be short.
"""

from __future__ import annotations

import logging
import time
from itertools import chain
from typing import Any

from celery import bootsteps
from celery.worker import state

log = logging.getLogger("linecap.leases")

RENEWALS_PER_TIMEOUT = 3


def renewal_interval(visibility_timeout: float) -> float:
    """Often enough that two missed renewals still leave the message with its worker."""
    return max(visibility_timeout / RENEWALS_PER_TIMEOUT, 1.0)


def held_delivery_tags() -> list[str]:
    """Delivery tags of every message this worker holds and has not acknowledged."""
    requests = chain(state.reserved_requests, state.active_requests,
                     getattr(state, "scheduled_requests", ()))
    tags = {getattr(request.message, "delivery_tag", None) for request in list(requests)}
    return sorted(tag for tag in tags if tag)


def renew(channel: Any, tags: list[str], now: float | None = None) -> int:
    """Mark the held messages as taken now (only those still unacknowledged: XX); how many."""
    if not tags:
        return 0
    now = time.time() if now is None else now
    with channel.conn_or_acquire() as client:
        return int(client.zadd(channel.unacked_index_key, dict.fromkeys(tags, now), xx=True,
                               ch=True))


class MessageLeases(bootsteps.StartStopStep):
    """Consumer step: renews the held messages' visibility on the worker's event loop (the
    loop owns the request sets, so they are read without a lock)."""

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def __init__(self, c: Any, **kwargs: Any) -> None:
        self._timer_entry = None
        super().__init__(c, **kwargs)

    def start(self, c: Any) -> None:
        channel = c.task_consumer.channel if c.task_consumer else None
        if channel is None or not hasattr(channel, "unacked_index_key"):
            return  # not kombu's Redis transport: the broker tracks deliveries itself
        interval = renewal_interval(channel.visibility_timeout)
        self._timer_entry = c.timer.call_repeatedly(interval, self._renew, (channel,))
        log.info("message leases renewed every %.0f s", interval,
                 extra={"visibility_timeout": channel.visibility_timeout})

    def stop(self, c: Any) -> None:
        if self._timer_entry is not None:
            self._timer_entry.cancel()
            self._timer_entry = None

    shutdown = stop

    @staticmethod
    def _renew(channel: Any) -> None:
        try:
            renew(channel, held_delivery_tags())
        except Exception as exc:  # a broker outage: the consumer reconnects; we try next time
            log.warning("could not renew message leases", extra={"error": type(exc).__name__})
