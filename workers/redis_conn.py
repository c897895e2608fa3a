"""Redis clients with timeouts, so a dead or hung Redis fails fast instead of hanging a request."""

from __future__ import annotations

import redis


def redis_client(url: str, socket_timeout: float = 5.0) -> redis.Redis:
    """A client for redis://, rediss:// (TLS, as on Heroku Redis) or unix:// URLs.

    Heroku Redis uses self-signed certificates; `?ssl_cert_reqs=none` in the URL turns off
    verification there, as redis-py reads it from the query string.
    """
    return redis.Redis.from_url(
        url,
        socket_timeout=socket_timeout,
        socket_connect_timeout=2.0,
        health_check_interval=30,
        decode_responses=True,
    )
