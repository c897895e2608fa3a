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
UNKNOWN_USER_STRATEGIES = ("external_id", "park")


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
    capillary_timeout_seconds: float = setting(10.0, "CAPILLARY_TIMEOUT_SECONDS", minimum=0)
    unknown_user_strategy: str = setting("external_id", "LINECAP_UNKNOWN_USER_STRATEGY",
                                         choices=UNKNOWN_USER_STRATEGIES)
    external_id_prefix: str = setting("line_", "LINECAP_EXTERNAL_ID_PREFIX")
    subscription_channel: str = setting("LINE", "CAPILLARY_SUBSCRIPTION_CHANNEL")
    subscription_priority: str = setting("BULK", "CAPILLARY_SUBSCRIPTION_PRIORITY",
                                         choices=("BULK", "TRANS"))
    lookup_identifier_name: str = setting("line", "CAPILLARY_LINE_IDENTIFIER_NAME")
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
    worker_metrics_host: str = setting("0.0.0.0", "LINECAP_WORKER_METRICS_HOST")
    web_concurrency: int = setting(2, "WEB_CONCURRENCY", minimum=1)
    web_threads: int = setting(4, "WEB_THREADS", minimum=1)
    worker_concurrency: int = setting(4, "WORKER_CONCURRENCY", minimum=1)
    flower_basic_auth: str = setting("", "FLOWER_BASIC_AUTH", secret=True)
    local_mode: bool = setting(False, "LINECAP_LOCAL_MODE")
    task_time_limit_seconds: int = setting(300, "LINECAP_TASK_TIME_LIMIT_SECONDS", minimum=30)

    def channel(self, channel_id: str) -> LineChannel | None:
        return next((c for c in self.channels if c.channel_id == channel_id), None)

    @property
    def single_channel(self) -> LineChannel | None:
        return self.channels[0] if len(self.channels) == 1 else None


@dataclass(frozen=True)
class LocalStackPorts:
    """The loopback ports `linecap up` uses (read before the rest: they decide REDIS_URL and
    the sandboxes' URLs)."""

    redis: int = setting(6390, "LINECAP_REDIS_PORT", minimum=1, maximum=65535)
    capillary_sandbox: int = setting(8091, "LINECAP_SANDBOX_PORT", minimum=1, maximum=65535)
    line_sandbox: int = setting(8092, "LINECAP_LINE_SANDBOX_PORT", minimum=1, maximum=65535)
    web: int = setting(8000, "PORT", minimum=1, maximum=65535)
    flower: int = setting(5555, "FLOWER_PORT", minimum=1, maximum=65535)


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
    return settings


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
    return LineChannel(**{key: entry[key].strip() for key in _CHANNEL_FIELDS})


def _key_list(name: str, raw: str) -> tuple[str, ...]:
    keys = tuple(k.strip() for k in raw.split(",") if k.strip())
    if any(len(k) < 16 for k in keys):
        raise ConfigError(f"{name}: every key must be at least 16 characters")
    return keys
