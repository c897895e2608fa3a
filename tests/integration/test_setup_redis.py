"""`linecap setup check` asks the broker Redis (a real one) whether it keeps what it acknowledged:
the embedded Redis passes; persistence off or an evicting policy fail; a Redis that refuses
CONFIG (as managed ones do) is read through INFO, or said to be unreadable."""

from __future__ import annotations

import pytest

from cli.localstack.embedded_redis import EmbeddedRedis
from cli.setup_checks_redis import broker_redis_checks
from tests.helpers import make_settings


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = EmbeddedRedis(tmp_path_factory.mktemp("setup-redis")).start()
    yield server
    server.stop()


@pytest.fixture
def admin(server):
    client = server.client()
    yield client
    client.config_set("maxmemory-policy", "noeviction")
    client.config_set("maxmemory", "0")
    client.acl_deluser("managed")


def results(url: str) -> dict[str, tuple[str, str]]:
    return {c.what: (c.result, c.detail + (f" fix: {c.fix}" if c.fix else ""))
            for c in broker_redis_checks(make_settings(REDIS_URL=url))}


def as_user(server: EmbeddedRedis, user: str) -> str:
    return f"redis://{user}:secret-for-tests@127.0.0.1:{server.port}/0"


def test_the_embedded_redis_keeps_what_it_acknowledged(server, admin):
    config = {**admin.config_get("appendonly"), **admin.config_get("appendfsync"),
              **admin.config_get("maxmemory-policy")}
    assert config == {"appendonly": "yes", "appendfsync": "everysec",
                      "maxmemory-policy": "noeviction"}
    found = results(server.url)
    assert found["persistence"][0] == "PASS" and "appendfsync everysec" in found["persistence"][1]
    assert found["eviction"] == ("PASS", "maxmemory-policy noeviction")


@pytest.mark.parametrize(("save", "said"), [("", "off"), (None, "RDB snapshots only")])
def test_persistence_off_fails_with_the_fix(tmp_path, save, said):
    with EmbeddedRedis(tmp_path, appendonly=False, save=save) as unsafe:
        result, detail = results(unsafe.url)["persistence"]
    assert result == "FAIL" and detail.startswith(said) and "appendonly yes" in detail


def test_an_evicting_policy_fails_with_the_fix(server, admin):
    admin.config_set("maxmemory-policy", "allkeys-lru")
    found = results(server.url)
    assert found["eviction"][0] == "WARN", "no maxmemory: nothing evicted yet"
    admin.config_set("maxmemory", str(512 * 1024 * 1024))
    found = results(server.url)
    assert found["eviction"][0] == "FAIL" and "allkeys-lru" in found["eviction"][1]
    assert "maxmemory-policy noeviction" in found["eviction"][1]


def test_a_redis_that_refuses_config_is_read_through_info(server, admin):
    admin.acl_setuser("managed", enabled=True, passwords=["+secret-for-tests"], keys=["*"],
                      commands=["+@all", "-config"])
    found = results(as_user(server, "managed"))
    assert found["eviction"][0] == "PASS"
    assert "CONFIG GET refused" in found["eviction"][1]
    assert found["persistence"][0] == "WARN" and "fsync policy not readable" in \
        found["persistence"][1]
    admin.config_set("maxmemory-policy", "volatile-lru")
    admin.config_set("maxmemory", str(512 * 1024 * 1024))
    assert results(as_user(server, "managed"))["eviction"][0] == "FAIL"


def test_a_redis_that_refuses_config_and_info_is_said_to_be_unreadable(server, admin):
    admin.acl_setuser("managed", enabled=True, passwords=["+secret-for-tests"], keys=["*"],
                      commands=["+@all", "-config", "-info"])
    found = results(as_user(server, "managed"))
    for check in ("persistence", "eviction"):
        assert found[check][0] == "WARN" and "refuses CONFIG GET and INFO" in found[check][1]


def test_an_unreachable_redis_fails_the_check():
    from cli.localstack.ports import free_port

    [check] = broker_redis_checks(make_settings(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0"))
    assert check.result == "FAIL" and "REDIS_URL" in check.fix
