"""`linecap setup check` on the broker Redis: is what "200 means stored" rests on there?

The receiver answers LINE 200 once an event's message is in Redis, and exactly-once rests on
Redis keeping the dedup records, user locks and delayed jobs beside it. So Redis must write what
it acknowledged to its append-only file (AOF), and must never evict keys: under any
`maxmemory-policy` but `noeviction` a full Redis silently drops queued messages, dedup records
or locks (noeviction refuses the write instead, which the receiver answers with 503, so LINE
redelivers). docs/RELIABILITY.md says what each setting can still lose.

Read with CONFIG GET where allowed; managed Redis often refuses CONFIG, then INFO tells part of
it (AOF on or off, the eviction policy, not the fsync policy), and the check says so.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis

from cli.setup_checks import FAIL, PASS, WARN, Check
from config import Settings
from core.store.connection import redis_client

WHERE = "redis"
FIX_PERSISTENCE = ("turn on the append-only file: appendonly yes, appendfsync everysec (or "
                   "always); on managed Redis choose a plan or setting with AOF persistence")
FIX_EVICTION = ("set maxmemory-policy noeviction (a full Redis then refuses new events with "
                "503 and LINE redelivers them, instead of dropping stored ones)")


@dataclass(frozen=True)
class RedisSettings:
    """What the broker Redis says about itself; None where it would not say."""

    source: str  # "CONFIG GET", "INFO", or "" when it refused both
    appendonly: bool | None = None
    appendfsync: str | None = None
    save: str | None = None
    maxmemory_policy: str | None = None
    maxmemory: int | None = None


def broker_redis_checks(settings: Settings) -> list[Check]:
    """The persistence and eviction checks of the Redis at REDIS_URL."""
    client = redis_client(settings.redis_url, socket_timeout=5.0, fail_fast=True)
    try:
        found = read_redis_settings(client)
    except redis.RedisError as exc:
        return [Check(WHERE, "reachable", FAIL,
                           f"cannot reach Redis ({type(exc).__name__})",
                           "check REDIS_URL and that Redis is up")]
    finally:
        client.close()
    checks = [persistence(found), eviction(found)]
    if found.source == "INFO":
        checks = [Check(c.where, c.what, c.result, f"{c.detail} (read from INFO: CONFIG GET "
                        "refused)", c.fix) for c in checks]
    return checks


def read_redis_settings(client: redis.Redis) -> RedisSettings:
    """CONFIG GET, or INFO where CONFIG is refused, or neither (source "")."""
    try:
        config: dict[str, str] = {}
        for name in ("appendonly", "appendfsync", "save", "maxmemory-policy", "maxmemory"):
            config.update(client.config_get(name))
        return RedisSettings("CONFIG GET", config.get("appendonly") == "yes",
                             config.get("appendfsync"), config.get("save"),
                             config.get("maxmemory-policy"), _int(config.get("maxmemory")))
    except redis.ResponseError:
        pass  # refused (renamed, NOPERM, not offered by the provider): try INFO
    try:
        info = {**client.info("persistence"), **client.info("memory")}
    except redis.ResponseError:
        return RedisSettings("")
    aof = info.get("aof_enabled")
    return RedisSettings("INFO", None if aof is None else bool(int(aof)), None, None,
                         info.get("maxmemory_policy"), _int(info.get("maxmemory")))


def persistence(found: RedisSettings) -> Check:
    what = "persistence"
    if not found.source:
        return _cannot_tell(what, "whether Redis writes what it acknowledged to disk")
    if found.appendonly is None:
        return _cannot_tell(what, "whether the append-only file is on")
    if not found.appendonly:
        if found.source == "INFO":
            return Check(WHERE, what, FAIL,
                              "append-only file off: a crash loses every event accepted since "
                              "the last RDB snapshot, if any", FIX_PERSISTENCE)
        if found.save:
            return Check(WHERE, what, FAIL,
                              f"RDB snapshots only (save {found.save}): a crash loses every "
                              "event accepted since the last snapshot", FIX_PERSISTENCE)
        return Check(WHERE, what, FAIL,
                          "off: a Redis restart loses every queued event", FIX_PERSISTENCE)
    if found.appendfsync is None:
        return Check(WHERE, what, WARN, "append-only file on; fsync policy not readable",
                          "make sure appendfsync is everysec or always")
    if found.appendfsync == "no":
        return Check(WHERE, what, WARN,
                          "append-only file on, appendfsync no: a host crash can lose the last "
                          "~30 s of accepted events",
                          "set appendfsync everysec (or always)")
    loses = "nothing" if found.appendfsync == "always" else "about the last second"
    return Check(WHERE, what, PASS,
                      f"append-only file on, appendfsync {found.appendfsync} (a host crash "
                      f"loses {loses})")


def eviction(found: RedisSettings) -> Check:
    what = "eviction"
    if not found.source or found.maxmemory_policy is None:
        return _cannot_tell(what, "the maxmemory-policy")
    policy = found.maxmemory_policy
    if policy == "noeviction":
        return Check(WHERE, what, PASS, "maxmemory-policy noeviction")
    if not found.maxmemory:
        return Check(WHERE, what, WARN,
                          f"maxmemory-policy {policy}, no maxmemory set: nothing is evicted "
                          "yet, but keys will be once a limit is set", FIX_EVICTION)
    return Check(WHERE, what, FAIL,
                      f"maxmemory-policy {policy}: a full Redis silently drops queued events, "
                      "dedup records and locks", FIX_EVICTION)


def _cannot_tell(what: str, unknown: str) -> Check:
    return Check(WHERE, what, WARN,
                      f"cannot tell {unknown}: this Redis refuses CONFIG GET and INFO "
                      "(managed Redis?)",
                      "ask your provider: append-only file on, maxmemory-policy noeviction")


def _int(value: object) -> int | None:
    try:
        return int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
