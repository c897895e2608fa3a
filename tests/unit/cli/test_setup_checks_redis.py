"""What `setup check` concludes from a Redis's own settings (read from a real Redis in
tests/integration/test_setup_redis.py)."""

from __future__ import annotations

import pytest

from cli.setup_checks_redis import RedisSettings, eviction, persistence

MIB = 1024 * 1024


@pytest.mark.parametrize(("found", "result", "said"), [
    (RedisSettings("CONFIG GET", True, "always", ""), "PASS", "loses nothing"),
    (RedisSettings("CONFIG GET", True, "everysec", ""), "PASS", "about the last second"),
    (RedisSettings("CONFIG GET", True, "no", ""), "WARN", "~30 s"),
    (RedisSettings("CONFIG GET", False, "everysec", "3600 1"), "FAIL", "RDB snapshots only"),
    (RedisSettings("CONFIG GET", False, "everysec", ""), "FAIL", "off"),
    (RedisSettings("INFO", True), "WARN", "fsync policy not readable"),
    (RedisSettings("INFO", False), "FAIL", "append-only file off"),
    (RedisSettings(""), "WARN", "cannot tell"),
])
def test_persistence(found, result, said):
    check = persistence(found)
    assert check.result == result and said in check.detail


@pytest.mark.parametrize(("found", "result"), [
    (RedisSettings("CONFIG GET", maxmemory_policy="noeviction", maxmemory=100 * MIB), "PASS"),
    (RedisSettings("CONFIG GET", maxmemory_policy="allkeys-lru", maxmemory=100 * MIB), "FAIL"),
    (RedisSettings("CONFIG GET", maxmemory_policy="volatile-ttl", maxmemory=100 * MIB), "FAIL"),
    (RedisSettings("CONFIG GET", maxmemory_policy="allkeys-lru", maxmemory=0), "WARN"),
    (RedisSettings("INFO", maxmemory_policy="noeviction"), "PASS"),
    (RedisSettings(""), "WARN"),
])
def test_eviction(found, result):
    assert eviction(found).result == result
