"""rediss:// (TLS, as on Heroku Redis): the broker, redis-py clients and Flower agree on
whether the certificate is verified, and verify unless the URL says ssl_cert_reqs=none."""

from __future__ import annotations

import ssl

import pytest
from redis.connection import SSLConnection

from config import ConfigError
from config.redis_tls import redis_py_url, tls_options
from core.store.connection import redis_client
from tests.helpers import make_settings
from workers.celery_app import celery_config, make_celery

TLS_URL = "rediss://:s3cret-pass@redis.example.com:6380/0"
SPELLINGS = [
    ("none", ssl.CERT_NONE), ("CERT_NONE", ssl.CERT_NONE),
    ("optional", ssl.CERT_OPTIONAL), ("CERT_OPTIONAL", ssl.CERT_OPTIONAL),
    ("required", ssl.CERT_REQUIRED), ("CERT_REQUIRED", ssl.CERT_REQUIRED),
]


def broker_connection(url: str):
    """The kombu Connection a worker or the web would open (not connected)."""
    return make_celery(make_settings(REDIS_URL=url)).connection_for_write()


def test_plain_redis_url_is_left_alone():
    url = "redis://127.0.0.1:6379/3"
    config = celery_config(make_settings(REDIS_URL=url))
    assert config["broker_url"] == url
    assert "broker_use_ssl" not in config
    assert tls_options(url) is None
    assert redis_py_url(url) == url
    assert not broker_connection(url).ssl


@pytest.mark.parametrize(("value", "mode"), SPELLINGS)
def test_ssl_cert_reqs_in_the_url_sets_broker_use_ssl(value, mode):
    url = f"{TLS_URL}?ssl_cert_reqs={value}"
    config = celery_config(make_settings(REDIS_URL=url))
    assert config["broker_url"] == url
    assert config["broker_use_ssl"] == {"ssl_cert_reqs": mode}
    # kombu's own reading of the URL comes out the same.
    assert broker_connection(url).ssl == {"ssl_cert_reqs": mode}


def test_without_ssl_cert_reqs_the_broker_verifies_instead_of_kombus_cert_none():
    config = celery_config(make_settings(REDIS_URL=TLS_URL))
    assert config["broker_use_ssl"] == {"ssl_cert_reqs": ssl.CERT_REQUIRED}
    # Left to itself kombu would use {"ssl_cert_reqs": CERT_NONE} with only a warning.
    assert broker_connection(TLS_URL).ssl == {"ssl_cert_reqs": ssl.CERT_REQUIRED}


def test_ssl_ca_certs_is_passed_on():
    url = f"{TLS_URL}?ssl_cert_reqs=required&ssl_ca_certs=/etc/ssl/redis-ca.pem"
    expected = {"ssl_cert_reqs": ssl.CERT_REQUIRED, "ssl_ca_certs": "/etc/ssl/redis-ca.pem"}
    assert celery_config(make_settings(REDIS_URL=url))["broker_use_ssl"] == expected
    assert broker_connection(url).ssl == expected
    # A CA alone still means verify.
    url = f"{TLS_URL}?ssl_ca_certs=/etc/ssl/redis-ca.pem"
    assert tls_options(url) == expected


def test_unknown_ssl_cert_reqs_is_a_config_error_that_does_not_show_the_password():
    url = f"{TLS_URL}?ssl_cert_reqs=off"
    with pytest.raises(ConfigError, match="REDIS_URL ssl_cert_reqs") as raised:
        celery_config(make_settings(REDIS_URL=url))
    assert "s3cret-pass" not in str(raised.value)
    with pytest.raises(ConfigError):
        redis_client(url)


@pytest.mark.parametrize(("value", "mode"), SPELLINGS)
def test_redis_py_client_accepts_every_spelling(value, mode):
    """redis-py alone refuses CERT_NONE ("Invalid SSL Certificate Requirements Flag")."""
    client = redis_client(f"{TLS_URL}?ssl_cert_reqs={value}&ssl_ca_certs=/tmp/ca.pem")
    pool = client.connection_pool
    assert pool.connection_class is SSLConnection
    connection = pool.connection_class(**pool.connection_kwargs)  # what a command would open
    assert connection.cert_reqs == mode
    assert connection.ca_certs == "/tmp/ca.pem"
    assert connection.password == "s3cret-pass"
    assert connection.port == 6380


def test_redis_py_client_verifies_when_the_url_does_not_say():
    pool = redis_client(TLS_URL).connection_pool
    assert pool.connection_class(**pool.connection_kwargs).cert_reqs == ssl.CERT_REQUIRED


def test_redis_py_url_only_respells_ssl_cert_reqs():
    url = f"{TLS_URL}?ssl_cert_reqs=CERT_NONE&ssl_ca_certs=/a%20b/ca.pem&health_check_interval=9"
    fixed = redis_py_url(url)
    assert fixed.startswith("rediss://:s3cret-pass@redis.example.com:6380/0?")
    assert "ssl_cert_reqs=none" in fixed
    assert tls_options(fixed) == {"ssl_cert_reqs": ssl.CERT_NONE, "ssl_ca_certs": "/a b/ca.pem"}
    assert "health_check_interval=9" in fixed
    assert redis_py_url(f"{TLS_URL}?ssl_cert_reqs=none") == f"{TLS_URL}?ssl_cert_reqs=none"


def test_flower_queue_view_gets_the_same_tls_settings():
    """Flower ignores the URL's query and reads only broker_use_ssl for its Redis client."""
    from flower.utils.broker import Broker

    app = make_celery(make_settings(REDIS_URL=f"{TLS_URL}?ssl_cert_reqs=none"))
    broker = Broker(app.connection_for_write().as_uri(include_password=True), http_api=None,
                    broker_use_ssl=app.conf.broker_use_ssl)
    args = broker._get_redis_client_args()
    assert args["ssl"] is True
    assert args["ssl_cert_reqs"] == ssl.CERT_NONE
