"""One typed settings object, read from the environment (12-factor).

Every process (web, worker, flower, CLI) builds its settings here, so a bad value stops them
all the same way: one line that names the variable and says what is wrong. Each field is
declared once, with its variable, its default and its bounds; `load_settings` reads them all.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import sys
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

DEFAULT_LINE_API_BASE_URL = "https://api.line.me"
DEFAULT_LINE_ACCESS_BASE_URL = "https://access.line.me"  # LINE's account-link dialog
DAY = 24 * 3600
# How long the per-user records in Redis are kept (docs/SECURITY.md, "Redis"); each is renewed
# whenever it is written. core.store reads these defaults too.
DEFAULT_USER_RECORD_TTL_SECONDS = 90 * DAY
DEFAULT_IDENTITY_TTL_SECONDS = 365 * DAY
DEFAULT_PARKED_TTL_SECONDS = 90 * DAY
DEFAULT_DEAD_LETTER_TTL_SECONDS = 30 * DAY
DEFAULT_HISTORY_TTL_SECONDS = 30 * DAY
DEFAULT_HISTORY_MAX_ENTRIES = 200
UNKNOWN_USER_STRATEGIES = ("external_id", "park")
# How a LINE user is found in Capillary: by the LINE id (identifierName=line, not in the
# documented list), by the externalId linecap gives every LINE profile it registers, or the
# first, falling back to the second once Capillary refuses it (8013).
LINE_LOOKUPS = ("auto", "line", "externalId")
LOYALTY_TYPES = ("non_loyalty", "loyalty")


class ConfigError(ValueError):
    """Invalid or missing configuration; the message names the variable and never its value."""


def setting(default: Any, env: str, *, minimum: float | None = None,
            maximum: float | None = None, choices: tuple[str, ...] = (),
            url: bool = False, secret: bool = False) -> Any:
    """A field read from the variable `env`; unset or empty gives `default`.

    The field's type decides the parsing: int, float, str, bool ("1"/"0") or a tuple of
    comma-separated keys (each at least 16 characters). `url` asks for an http(s) URL.
    """
    metadata = {"env": env, "minimum": minimum, "maximum": maximum, "choices": choices,
                "url": url}
    return field(default=default, repr=not secret, metadata=metadata)


@dataclass(frozen=True)
class LineChannel:
    """A LINE Messaging API channel and the InTouch source account it maps to."""

    name: str
    channel_id: str
    channel_secret: str = field(repr=False)
    access_token: str = field(repr=False)
    source_account_id: str
    # The secret before the last rotation, accepted beside the current one for a while so that
    # no webhook is refused while the deployment catches up (README, "Rotating a secret").
    previous_channel_secret: str | None = field(default=None, repr=False)

    @property
    def channel_secrets(self) -> tuple[str, ...]:
        """The secrets a webhook signature may be made with, the current one first."""
        previous = (self.previous_channel_secret,) if self.previous_channel_secret else ()
        return (self.channel_secret, *previous)


@dataclass(frozen=True)
class CapillaryAuth:
    """Either Basic (till username + password) or OAuth (key + secret) credentials."""

    username: str | None = None
    password: str | None = field(default=None, repr=False)
    oauth_key: str | None = None
    oauth_secret: str | None = field(default=None, repr=False)

    @property
    def uses_oauth(self) -> bool:
        return self.oauth_key is not None


@dataclass(frozen=True)
class Settings:
    """Everything a linecap process needs to know about its deployment."""

    redis_url: str
    capillary_base_url: str
    capillary_auth: CapillaryAuth
    channels: tuple[LineChannel, ...]
    line_api_base_url: str = setting(DEFAULT_LINE_API_BASE_URL, "LINE_API_BASE_URL", url=True)
    capillary_rate_limit_rpm: int = setting(100, "CAPILLARY_RATE_LIMIT_RPM", minimum=1)
    # Capillary's own budget of an API group, when it has one (0: the group shares the above).
    rpm_lookup: int = setting(0, "CAPILLARY_RATE_LIMIT_RPM_LOOKUP", minimum=0)
    rpm_add: int = setting(0, "CAPILLARY_RATE_LIMIT_RPM_ADD", minimum=0)
    rpm_subscriptions: int = setting(0, "CAPILLARY_RATE_LIMIT_RPM_SUBSCRIPTIONS", minimum=0)
    rpm_identifiers: int = setting(0, "CAPILLARY_RATE_LIMIT_RPM_IDENTIFIERS", minimum=0)
    rpm_bulk: int = setting(0, "CAPILLARY_RATE_LIMIT_RPM_BULK", minimum=0)
    # The share of every budget that back-fills, imports and replays leave to live events.
    live_reserve_percent: int = setting(20, "LINECAP_LIVE_RESERVE_PERCENT", minimum=0,
                                        maximum=90)
    # Items per POST /v2/customers/bulk (halved on 1060 "batch limit exceeded").
    batch_size: int = setting(10, "CAPILLARY_BATCH_SIZE", minimum=1, maximum=100)
    capillary_timeout_seconds: float = setting(10.0, "CAPILLARY_TIMEOUT_SECONDS", minimum=0)
    unknown_user_strategy: str = setting("external_id", "LINECAP_UNKNOWN_USER_STRATEGY",
                                         choices=UNKNOWN_USER_STRATEGIES)
    external_id_prefix: str = setting("line_", "LINECAP_EXTERNAL_ID_PREFIX")
    subscription_channel: str = setting("LINE", "CAPILLARY_SUBSCRIPTION_CHANNEL")
    subscription_priority: str = setting("BULK", "CAPILLARY_SUBSCRIPTION_PRIORITY",
                                         choices=("BULK", "TRANS"))
    lookup_identifier_name: str = setting("line", "CAPILLARY_LINE_IDENTIFIER_NAME")
    line_lookup: str = setting("auto", "CAPILLARY_LINE_LOOKUP", choices=LINE_LOOKUPS)
    loyalty_type: str = setting("non_loyalty", "CAPILLARY_LOYALTY_TYPE", choices=LOYALTY_TYPES)
    org_unit_id: int = setting(0, "CAPILLARY_ORG_UNIT_ID", minimum=0)  # 0: not sent
    retry_horizon_seconds: int = setting(24 * 3600, "LINECAP_RETRY_HORIZON_SECONDS", minimum=1)
    retry_max_delay_seconds: int = setting(600, "LINECAP_RETRY_MAX_DELAY_SECONDS", minimum=1)
    visibility_timeout_seconds: int = setting(30, "LINECAP_VISIBILITY_TIMEOUT_SECONDS",
                                              minimum=10)
    event_dedup_ttl_seconds: int = setting(7 * 24 * 3600, "LINECAP_DEDUP_TTL_SECONDS",
                                           minimum=60)
    customer_cache_ttl_seconds: int = setting(24 * 3600, "LINECAP_CUSTOMER_CACHE_TTL_SECONDS")
    user_lock_seconds: int = setting(15, "LINECAP_USER_LOCK_SECONDS", minimum=5)
    max_inline_budget_wait_seconds: float = setting(
        2.0, "LINECAP_MAX_INLINE_BUDGET_WAIT_SECONDS", minimum=0)
    webhook_max_body_bytes: int = setting(1024 * 1024, "LINECAP_WEBHOOK_MAX_BODY_BYTES",
                                          minimum=1024)
    ops_api_keys: tuple[str, ...] = setting((), "LINECAP_OPS_API_KEYS", secret=True)
    task_sent_events: bool = setting(True, "LINECAP_TASK_SENT_EVENTS")
    api_keys: tuple[str, ...] = setting((), "LINECAP_API_KEYS", secret=True)
    link_nonce_ttl_seconds: int = setting(3600, "LINECAP_LINK_NONCE_TTL_SECONDS", minimum=60)
    link_login_url: str = setting("", "LINECAP_LINK_LOGIN_URL", url=True)
    port: int = setting(8000, "PORT", minimum=1, maximum=65535)
    worker_metrics_port: int = setting(9808, "LINECAP_WORKER_METRICS_PORT", minimum=0,
                                       maximum=65535)  # 0: no endpoint
    # Loopback unless asked: the endpoint has no authentication (docs/SECURITY.md).
    worker_metrics_host: str = setting("127.0.0.1", "LINECAP_WORKER_METRICS_HOST")
    web_concurrency: int = setting(2, "WEB_CONCURRENCY", minimum=1)
    web_threads: int = setting(4, "WEB_THREADS", minimum=1)
    worker_concurrency: int = setting(4, "WORKER_CONCURRENCY", minimum=1)
    flower_basic_auth: str = setting("", "FLOWER_BASIC_AUTH", secret=True)
    local_mode: bool = setting(False, "LINECAP_LOCAL_MODE")
    webhook_max_events: int = setting(500, "LINECAP_WEBHOOK_MAX_EVENTS", minimum=1)
    metrics_keys: tuple[str, ...] = setting((), "LINECAP_METRICS_KEYS", secret=True)
    # X-Forwarded-For/-Proto are believed only from this many proxies in front (Heroku: 1).
    forwarded_hops: int = setting(0, "LINECAP_FORWARDED_HOPS", minimum=0, maximum=5)
    user_record_ttl_seconds: int = setting(DEFAULT_USER_RECORD_TTL_SECONDS,
                                           "LINECAP_USER_RECORD_TTL_SECONDS", minimum=DAY)
    identity_ttl_seconds: int = setting(DEFAULT_IDENTITY_TTL_SECONDS,
                                        "LINECAP_IDENTITY_TTL_SECONDS", minimum=DAY)
    parked_ttl_seconds: int = setting(DEFAULT_PARKED_TTL_SECONDS, "LINECAP_PARKED_TTL_SECONDS",
                                      minimum=DAY)
    dead_letter_ttl_seconds: int = setting(DEFAULT_DEAD_LETTER_TTL_SECONDS,
                                           "LINECAP_DEAD_LETTER_TTL_SECONDS", minimum=DAY)
    line_access_base_url: str = setting(DEFAULT_LINE_ACCESS_BASE_URL, "LINE_ACCESS_BASE_URL",
                                        url=True)
    # A user's history (what arrived, how it ended, the Capillary calls): kept this long after
    # its last entry, at most this many entries per (channel, user).
    history_ttl_seconds: int = setting(DEFAULT_HISTORY_TTL_SECONDS, "LINECAP_HISTORY_TTL_SECONDS",
                                       minimum=DAY)
    history_max_entries: int = setting(DEFAULT_HISTORY_MAX_ENTRIES,
                                       "LINECAP_HISTORY_MAX_ENTRIES", minimum=10, maximum=5000)
    # Reconciliation with LINE's follower list, every this many seconds per channel (0: off);
    # LINECAP_RECONCILE_CHANNEL_INTERVALS overrides it per channel ("<channel id>=<seconds>,…").
    reconcile_interval_seconds: int = setting(DAY, "LINECAP_RECONCILE_INTERVAL_SECONDS",
                                              minimum=0, maximum=30 * DAY)
    reconcile_channel_intervals: str = setting("", "LINECAP_RECONCILE_CHANNEL_INTERVALS")
    # Users linecap has as following whom LINE's list leaves out get an unfollow (off: they
    # are only reported; LINE's list also leaves out users who have not consented).
    reconcile_repair_missing: bool = setting(False, "LINECAP_RECONCILE_REPAIR_MISSING")
    # How often the beat process asks the workers whether a channel's reconciliation is due.
    beat_tick_seconds: int = setting(60, "LINECAP_BEAT_TICK_SECONDS", minimum=1, maximum=3600)
    task_time_limit_seconds: int = setting(300, "LINECAP_TASK_TIME_LIMIT_SECONDS", minimum=30)

    def channel(self, channel_id: str) -> LineChannel | None:
        return next((c for c in self.channels if c.channel_id == channel_id), None)

    @property
    def group_rate_limits(self) -> dict[str, int]:
        """The API groups with a budget of their own (core.store.rate_budget.API_GROUPS)."""
        limits = {"lookup": self.rpm_lookup, "add": self.rpm_add,
                  "subscriptions": self.rpm_subscriptions,
                  "identifiers": self.rpm_identifiers, "bulk": self.rpm_bulk}
        return {group: limit for group, limit in limits.items() if limit}

    @property
    def single_channel(self) -> LineChannel | None:
        return self.channels[0] if len(self.channels) == 1 else None

    def reconcile_interval(self, channel_id: str) -> int:
        """Seconds between two reconciliations of the channel (0: never on a schedule)."""
        overrides = parse_channel_intervals(self.reconcile_channel_intervals)
        return overrides.get(channel_id, self.reconcile_interval_seconds)


@dataclass(frozen=True)
class LocalStackSettings:
    """What `linecap up` alone reads: its loopback ports (read before the rest, since they
    decide REDIS_URL and the sandboxes' URLs) and the org its Capillary sandbox plays."""

    redis: int = setting(6390, "LINECAP_REDIS_PORT", minimum=1, maximum=65535)
    capillary_sandbox: int = setting(8091, "LINECAP_SANDBOX_PORT", minimum=1, maximum=65535)
    line_sandbox: int = setting(8092, "LINECAP_LINE_SANDBOX_PORT", minimum=1, maximum=65535)
    web: int = setting(8000, "PORT", minimum=1, maximum=65535)
    flower: int = setting(5555, "FLOWER_PORT", minimum=1, maximum=65535)
    # strict (the strictest documented reading), lenient, or a JSON object of switches
    # (sandboxes/capillary/org.py)
    sandbox_org: str = setting("strict", "LINECAP_SANDBOX_ORG")


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build settings from the environment, or raise ConfigError naming the bad variable."""
    env = os.environ if environ is None else environ
    settings = Settings(
        redis_url=_redis_url(env),
        capillary_base_url=_http_url(env, "CAPILLARY_BASE_URL", required=True),
        capillary_auth=_capillary_auth(env),
        channels=_channels(env),
        **read_fields(Settings, env),
    )
    pairs = settings.flower_basic_auth.split(",") if settings.flower_basic_auth else []
    if not all(":" in pair and pair.split(":", 1)[1] for pair in pairs):
        raise ConfigError("FLOWER_BASIC_AUTH must be user:password[,user2:password2]")
    unknown = set(parse_channel_intervals(settings.reconcile_channel_intervals)) - {
        c.channel_id for c in settings.channels}
    if unknown:
        raise ConfigError("LINECAP_RECONCILE_CHANNEL_INTERVALS names a channel that is not "
                          f"configured: {', '.join(sorted(unknown))}")
    return settings


def parse_channel_intervals(raw: str) -> dict[str, int]:
    """`<channel id>=<seconds>,…` as a dict; ConfigError naming the variable otherwise."""
    intervals: dict[str, int] = {}
    for pair in (p.strip() for p in raw.split(",") if p.strip()):
        channel_id, _, seconds = pair.partition("=")
        if not (re.fullmatch(r"[A-Za-z0-9_-]{1,64}", channel_id.strip())
                and seconds.strip().isascii() and seconds.strip().isdigit()):
            raise ConfigError("LINECAP_RECONCILE_CHANNEL_INTERVALS must be "
                              "<channel id>=<seconds>[,<channel id>=<seconds>…]")
        value = int(seconds.strip())
        if value > 30 * DAY:
            raise ConfigError("LINECAP_RECONCILE_CHANNEL_INTERVALS: at most 2592000 seconds "
                              "(30 days) per channel")
        intervals[channel_id.strip()] = value
    return intervals


def settings_or_exit(exit_code: int = 2) -> Settings:
    """Settings from the environment, or one line on stderr and SystemExit(exit_code)."""
    try:
        return load_settings()
    except ConfigError as exc:
        print(f"linecap: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(exit_code) from None


def read_fields(cls: type, env: Mapping[str, str]) -> dict[str, Any]:
    """Every `setting()` field of the dataclass, parsed from its variable."""
    types = typing.get_type_hints(cls)
    values = {}
    for spec in dataclasses.fields(cls):
        if "env" in spec.metadata:
            values[spec.name] = _read(env, spec, types[spec.name])
    return values


def _read(env: Mapping[str, str], spec: dataclasses.Field, kind: Any) -> Any:
    meta, name = spec.metadata, spec.metadata["env"]
    raw = env.get(name, "").strip()
    if not raw:
        return spec.default
    if kind is bool:
        if raw not in ("1", "0"):
            raise ConfigError(f"{name} must be 1 or 0")
        return raw == "1"
    if kind in (int, float):
        value = _number(name, raw, kind)
        if meta["minimum"] is not None and value < meta["minimum"]:
            raise ConfigError(f"{name} must be at least {meta['minimum']:g}")
        if meta["maximum"] is not None and value > meta["maximum"]:
            raise ConfigError(f"{name} must be at most {meta['maximum']:g}")
        return value
    if kind == tuple[str, ...]:
        return _key_list(name, raw)
    if meta["choices"] and raw not in meta["choices"]:
        raise ConfigError(f"{name} must be one of: {', '.join(meta['choices'])}")
    if meta["url"]:
        return _http_url(env, name)
    return raw


def _number(name: str, raw: str, kind: type) -> int | float:
    try:
        return kind(raw)
    except ValueError:
        raise ConfigError(
            f"{name} must be a {'whole number' if kind is int else 'number'}") from None


def _redis_url(env: Mapping[str, str]) -> str:
    url = env.get("REDIS_URL", "").strip()
    if not url:
        raise ConfigError("REDIS_URL is not set (e.g. redis://127.0.0.1:6379/0)")
    if urlparse(url).scheme not in ("redis", "rediss", "unix"):
        raise ConfigError("REDIS_URL must start with redis://, rediss:// or unix://")
    from config.redis_tls import tls_options  # here: config.redis_tls imports ConfigError

    tls_options(url)  # a bad ssl_cert_reqs stops start-up here, in one line
    return url


def _http_url(env: Mapping[str, str], name: str, required: bool = False) -> str:
    url = env.get(name, "").strip().rstrip("/")
    if not url:
        if required:
            raise ConfigError(f"{name} is not set (e.g. https://eu.api.capillarytech.com)")
        return ""
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ConfigError(f"{name} must be an http(s) URL")
    return url


def _capillary_auth(env: Mapping[str, str]) -> CapillaryAuth:
    key, secret = env.get("CAPILLARY_OAUTH_KEY"), env.get("CAPILLARY_OAUTH_SECRET")
    if key or secret:
        if not (key and secret):
            missing = "CAPILLARY_OAUTH_SECRET" if key else "CAPILLARY_OAUTH_KEY"
            raise ConfigError(f"{missing} is not set (OAuth needs both key and secret)")
        return CapillaryAuth(oauth_key=key, oauth_secret=secret)
    user, password = env.get("CAPILLARY_USERNAME"), env.get("CAPILLARY_PASSWORD")
    if not user:
        raise ConfigError(
            "CAPILLARY_USERNAME is not set (or set CAPILLARY_OAUTH_KEY and CAPILLARY_OAUTH_SECRET)"
        )
    if not password:
        raise ConfigError("CAPILLARY_PASSWORD is not set")
    return CapillaryAuth(username=user, password=password)


_CHANNEL_FIELDS = ("name", "channel_id", "channel_secret", "access_token", "source_account_id")


def _channels(env: Mapping[str, str]) -> tuple[LineChannel, ...]:
    raw = env.get("LINE_CHANNELS", "").strip()
    if raw:
        entries = _parse_channel_list(raw)
    elif env.get("LINE_CHANNEL_ID"):
        entries = [
            {
                "name": env.get("LINE_CHANNEL_NAME", "default"),
                "channel_id": env.get("LINE_CHANNEL_ID", ""),
                "channel_secret": env.get("LINE_CHANNEL_SECRET", ""),
                "access_token": env.get("LINE_CHANNEL_ACCESS_TOKEN", ""),
                "source_account_id": env.get("LINE_SOURCE_ACCOUNT_ID", ""),
                "previous_channel_secret": env.get("LINE_CHANNEL_PREVIOUS_SECRET", ""),
            }
        ]
        for var, key in (
            ("LINE_CHANNEL_SECRET", "channel_secret"),
            ("LINE_CHANNEL_ACCESS_TOKEN", "access_token"),
            ("LINE_SOURCE_ACCOUNT_ID", "source_account_id"),
        ):
            if not entries[0][key]:
                raise ConfigError(f"{var} is not set (needed with LINE_CHANNEL_ID)")
    else:
        raise ConfigError("LINE_CHANNELS is not set (or LINE_CHANNEL_ID and friends)")
    channels = tuple(_channel(i, entry) for i, entry in enumerate(entries))
    ids = [c.channel_id for c in channels]
    if len(set(ids)) != len(ids):
        raise ConfigError("LINE_CHANNELS has the same channel_id twice")
    return channels


def _parse_channel_list(raw: str) -> list[dict]:
    try:
        entries = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"LINE_CHANNELS is not valid JSON ({exc.msg}, char {exc.pos})") from None
    if not isinstance(entries, list) or not entries:
        raise ConfigError("LINE_CHANNELS must be a non-empty JSON list of channel objects")
    return entries


def _channel(index: int, entry: object) -> LineChannel:
    if not isinstance(entry, dict):
        raise ConfigError(f"LINE_CHANNELS[{index}] must be an object")
    for key in _CHANNEL_FIELDS:
        value = entry.get(key)
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"LINE_CHANNELS[{index}].{key} is missing or empty")
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", entry["channel_id"]):
        raise ConfigError(f"LINE_CHANNELS[{index}].channel_id must be letters, digits, _ or -")
    previous = entry.get("previous_channel_secret") or ""
    if not isinstance(previous, str):
        raise ConfigError(f"LINE_CHANNELS[{index}].previous_channel_secret must be text")
    return LineChannel(**{key: entry[key].strip() for key in _CHANNEL_FIELDS},
                       previous_channel_secret=previous.strip() or None)


def _key_list(name: str, raw: str) -> tuple[str, ...]:
    keys = tuple(k.strip() for k in raw.split(",") if k.strip())
    if any(len(k) < 16 for k in keys):
        raise ConfigError(f"{name}: every key must be at least 16 characters")
    return keys
