"""What most commands need before they start: settings, the chosen channel, a reachable Redis,
a runtime over the shared rate budget, and a Celery app to publish with.

Each helper turns a missing prerequisite into a CliError naming it, so `main` can print one line.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager

import redis
from celery import Celery

from cli.output import CliError, display_url
from config import LineChannel, Settings, load_settings
from core.store.connection import redis_client
from workers.runtime import Runtime, build_runtime

# A person at a terminal can wait longer for a budget slot than a worker should.
CLI_BUDGET_WAIT_SECONDS = 30.0


def settings() -> Settings:
    """The same settings every linecap process reads (raises ConfigError)."""
    return load_settings()


def pick_channel(config: Settings, channel_id: str | None) -> LineChannel:
    """The --channel given, or the only configured one."""
    known = ", ".join(c.channel_id for c in config.channels)
    if channel_id:
        channel = config.channel(channel_id)
        if channel is None:
            raise CliError(f"channel {channel_id} is not configured (configured: {known})")
        return channel
    if config.single_channel is not None:
        return config.single_channel
    raise CliError(f"several channels are configured; choose one with --channel ({known})")


def connect_redis(config: Settings) -> redis.Redis:
    """A Redis client that has answered PING, or a CliError saying Redis is unreachable."""
    client = redis_client(config.redis_url)
    try:
        client.ping()
    except redis.RedisError as exc:
        raise CliError(unreachable_redis(config.redis_url, exc)) from None
    return client


def unreachable_redis(url: str, exc: Exception) -> str:
    return (f"cannot reach Redis at {display_url(url)} ({type(exc).__name__}); "
            "is it running? (`linecap up` starts one)")


def runtime(config: Settings) -> Runtime:
    """The workers' runtime (Capillary client inside the shared Redis budget) for this process.

    Built from the settings this command loaded rather than `get_runtime()`'s per-process cache,
    so an in-process caller with another environment never gets a runtime aimed elsewhere.
    """
    connect_redis(config)
    wait = max(config.max_inline_budget_wait_seconds, CLI_BUDGET_WAIT_SECONDS)
    return build_runtime(dataclasses.replace(config, max_inline_budget_wait_seconds=wait))


def make_celery_app(config: Settings) -> Celery:
    from workers.celery_app import make_celery

    return make_celery(config)


@contextmanager
def celery_app(config: Settings) -> Iterator[Celery]:
    """A Celery app for publishing, its broker connections closed afterwards."""
    app = make_celery_app(config)
    try:
        yield app
    finally:
        app.close()
