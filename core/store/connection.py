"""Redis clients with timeouts, so a dead or hung Redis fails fast instead of hanging a request."""

from __future__ import annotations

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from config.redis_tls import redis_py_url


def redis_client(url: str, socket_timeout: float = 5.0, fail_fast: bool = False) -> redis.Redis:
    """A client for redis://, rediss:// (TLS, as on Heroku Redis) or unix:// URLs.

    Heroku Redis uses self-signed certificates; `?ssl_cert_reqs=none` (or `CERT_NONE`) in the
    URL turns off verification there; without it the certificate is verified.

    `fail_fast` keeps one immediate retry (for a pooled socket Redis closed) and no backoff: a
    readiness probe or a metrics scrape must answer "Redis is down" at once, not after seconds.
    """
    extra = {"retry": Retry(NoBackoff(), 1)} if fail_fast else {}
    return redis.Redis.from_url(
        redis_py_url(url),
        socket_timeout=socket_timeout,
        socket_connect_timeout=2.0,
        health_check_interval=30,
        decode_responses=True,
        **extra,
    )
