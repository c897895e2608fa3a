"""One typed settings object, read from the environment (12-factor).

Every process (web, worker, flower, CLI) builds its settings here, so a bad value stops them
all the same way: one line that names the variable and says what is wrong.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlparse

DEFAULT_LINE_API_BASE_URL = "https://api.line.me"
UNKNOWN_USER_STRATEGIES = ("external_id", "park")


class ConfigError(ValueError):
    """Invalid or missing configuration; the message names the variable and never its value."""


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
    line_api_base_url: str = DEFAULT_LINE_API_BASE_URL
    capillary_rate_limit_rpm: int = 100
    capillary_timeout_seconds: float = 10.0
    unknown_user_strategy: str = "external_id"
    external_id_prefix: str = "line_"
    subscription_channel: str = "LINE"
    subscription_priority: str = "BULK"
    lookup_identifier_name: str = "line"
    retry_horizon_seconds: int = 24 * 3600
    retry_max_delay_seconds: int = 600
    visibility_timeout_seconds: int = 3600
    event_dedup_ttl_seconds: int = 7 * 24 * 3600
    customer_cache_ttl_seconds: int = 24 * 3600
    user_lock_seconds: int = 60
    max_inline_budget_wait_seconds: float = 2.0
    webhook_max_body_bytes: int = 1024 * 1024
    ops_api_keys: tuple[str, ...] = field(default=(), repr=False)
    task_sent_events: bool = True
    api_keys: tuple[str, ...] = field(default=(), repr=False)
    link_nonce_ttl_seconds: int = 3600
    link_login_url: str = ""
    port: int = 8000
    worker_metrics_port: int = 9808  # 0 = no endpoint
    worker_metrics_host: str = "0.0.0.0"

    def channel(self, channel_id: str) -> LineChannel | None:
        return next((c for c in self.channels if c.channel_id == channel_id), None)

    @property
    def single_channel(self) -> LineChannel | None:
        return self.channels[0] if len(self.channels) == 1 else None


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build settings from the environment, or raise ConfigError naming the bad variable."""
    env = os.environ if environ is None else environ
    settings = Settings(
        redis_url=_redis_url(env),
        capillary_base_url=_http_url(env, "CAPILLARY_BASE_URL", required=True),
        capillary_auth=_capillary_auth(env),
        channels=_channels(env),
        line_api_base_url=_http_url(env, "LINE_API_BASE_URL") or DEFAULT_LINE_API_BASE_URL,
        capillary_rate_limit_rpm=_int(env, "CAPILLARY_RATE_LIMIT_RPM", 100, minimum=1),
        capillary_timeout_seconds=_float(env, "CAPILLARY_TIMEOUT_SECONDS", 10.0),
        unknown_user_strategy=_choice(
            env, "LINECAP_UNKNOWN_USER_STRATEGY", UNKNOWN_USER_STRATEGIES, "external_id"
        ),
        external_id_prefix=env.get("LINECAP_EXTERNAL_ID_PREFIX", "line_"),
        subscription_channel=env.get("CAPILLARY_SUBSCRIPTION_CHANNEL", "LINE"),
        subscription_priority=_choice(
            env, "CAPILLARY_SUBSCRIPTION_PRIORITY", ("BULK", "TRANS"), "BULK"
        ),
        lookup_identifier_name=env.get("CAPILLARY_LINE_IDENTIFIER_NAME", "line"),
        retry_horizon_seconds=_int(env, "LINECAP_RETRY_HORIZON_SECONDS", 24 * 3600, minimum=1),
        retry_max_delay_seconds=_int(env, "LINECAP_RETRY_MAX_DELAY_SECONDS", 600, minimum=1),
        visibility_timeout_seconds=_int(
            env, "LINECAP_VISIBILITY_TIMEOUT_SECONDS", 3600, minimum=10
        ),
        event_dedup_ttl_seconds=_int(env, "LINECAP_DEDUP_TTL_SECONDS", 7 * 24 * 3600, minimum=60),
        customer_cache_ttl_seconds=_int(env, "LINECAP_CUSTOMER_CACHE_TTL_SECONDS", 86400),
        user_lock_seconds=_int(env, "LINECAP_USER_LOCK_SECONDS", 60, minimum=5),
        max_inline_budget_wait_seconds=_float(env, "LINECAP_MAX_INLINE_BUDGET_WAIT_SECONDS", 2.0),
        port=_int(env, "PORT", 8000, minimum=1, maximum=65535),
        worker_metrics_port=_int(env, "LINECAP_WORKER_METRICS_PORT", 9808, maximum=65535),
        worker_metrics_host=env.get("LINECAP_WORKER_METRICS_HOST", "").strip() or "0.0.0.0",
        ops_api_keys=_key_list(env, "LINECAP_OPS_API_KEYS"),
        task_sent_events=_choice(env, "LINECAP_TASK_SENT_EVENTS", ("1", "0"), "1") == "1",
        api_keys=_key_list(env, "LINECAP_API_KEYS"),
        link_nonce_ttl_seconds=_int(env, "LINECAP_LINK_NONCE_TTL_SECONDS", 3600, minimum=60),
        link_login_url=_http_url(env, "LINECAP_LINK_LOGIN_URL"),
    )
    if settings.visibility_timeout_seconds <= settings.retry_max_delay_seconds + 10:
        raise ConfigError(
            "LINECAP_VISIBILITY_TIMEOUT_SECONDS must exceed LINECAP_RETRY_MAX_DELAY_SECONDS by "
            "more than 10 s, or Redis redelivers retries while they wait"
        )
    return settings


def settings_or_exit(exit_code: int = 2) -> Settings:
    """Settings from the environment, or one line on stderr and SystemExit(exit_code)."""
    try:
        return load_settings()
    except ConfigError as exc:
        print(f"linecap: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(exit_code) from None


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


def _key_list(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    keys = tuple(k.strip() for k in env.get(name, "").split(",") if k.strip())
    if any(len(k) < 16 for k in keys):
        raise ConfigError(f"{name}: every key must be at least 16 characters")
    return keys


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0,
         maximum: int | None = None) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{name} must be at most {maximum}")
    return value


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number") from None
    if value < 0:
        raise ConfigError(f"{name} must not be negative")
    return value


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...], default: str) -> str:
    value = env.get(name, "").strip() or default
    if value not in choices:
        raise ConfigError(f"{name} must be one of: {', '.join(choices)}")
    return value
