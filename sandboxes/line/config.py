"""Sandbox configuration: the channels it impersonates, in linecap's LINE_CHANNELS shape.

Extra optional keys per channel: ``verified`` (default true; false makes followers/ids 403),
``rate_limit_per_second`` (default none), ``display_name`` and ``webhook_endpoint``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

REQUIRED_KEYS = ("name", "channel_id", "channel_secret", "access_token")


def bot_user_id_for(channel_id: str) -> str:
    """Deterministic bot user id (``U`` + 32 hex) so a restart keeps the same destination."""
    return "U" + hashlib.sha256(channel_id.encode("utf-8")).hexdigest()[:32]


@dataclass(frozen=True)
class Channel:
    """One Messaging API channel as the sandbox sees it."""

    name: str
    channel_id: str
    channel_secret: str
    access_token: str
    source_account_id: str
    bot_user_id: str
    basic_id: str
    display_name: str
    verified: bool = True
    rate_limit_per_second: float | None = None
    webhook_endpoint: str | None = None


@dataclass
class LineSandboxConfig:
    """Startup settings; ``channels`` is a list of dicts as in LINE_CHANNELS."""

    channels: list[dict[str, Any]] = field(default_factory=list)
    webhook_timeout_seconds: float = 2.0
    # "Link tokens are valid for 10 minutes and can only be used once" (Messaging API
    # reference, "Issue link token"; line-openapi messaging-api.yml, IssueLinkTokenResponse).
    link_token_ttl_seconds: int = 600
    followers_next_ttl_seconds: int = 24 * 3600
    # "It may take up to a minute for changes to be reflected" (developers.line.biz Messaging
    # API reference, Set webhook endpoint URL): GET answers the old endpoint until then.
    endpoint_propagation_seconds: float = 60.0
    # Rate limits are per channel and per endpoint (developers.line.biz Messaging API
    # reference, "Rate limits"): (requests, seconds) per group of endpoints.
    rate_limits: dict[str, tuple[int, float]] = field(default_factory=lambda: {
        "webhook_endpoint": (1000, 60.0),
        "webhook_test": (60, 3600.0),
        "default": (2000, 1.0),
    })

    @classmethod
    def from_json(cls, raw: str, **kwargs: Any) -> LineSandboxConfig:
        """Build from a LINE_CHANNELS JSON string (a list, or one object)."""
        data = json.loads(raw)
        if isinstance(data, dict):
            data = [data]
        if not isinstance(data, list):
            raise ValueError("channels must be a JSON list of channel objects")
        return cls(channels=data, **kwargs)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> LineSandboxConfig:
        """Read LINE_CHANNELS from the environment."""
        env = os.environ if environ is None else environ
        raw = env.get("LINE_CHANNELS", "").strip()
        if not raw:
            raise ValueError("LINE_CHANNELS is not set")
        return cls.from_json(raw)

    def parsed_channels(self) -> list[Channel]:
        """Validated channels; raises ValueError on a missing key or a duplicate id/token."""
        result: list[Channel] = []
        for index, entry in enumerate(self.channels):
            result.append(_channel(index, entry))
        ids = [c.channel_id for c in result]
        tokens = [c.access_token for c in result]
        if len(set(ids)) != len(ids):
            raise ValueError("the same channel_id is configured twice")
        if len(set(tokens)) != len(tokens):
            raise ValueError("the same access_token is configured for two channels")
        return result


def _channel(index: int, entry: object) -> Channel:
    if not isinstance(entry, dict):
        raise ValueError(f"channels[{index}] must be an object")
    for key in REQUIRED_KEYS:
        if not isinstance(entry.get(key), str) or not entry[key]:
            raise ValueError(f"channels[{index}].{key} is missing or empty")
    rate = entry.get("rate_limit_per_second")
    return Channel(
        name=entry["name"],
        channel_id=entry["channel_id"],
        channel_secret=entry["channel_secret"],
        access_token=entry["access_token"],
        source_account_id=str(entry.get("source_account_id") or ""),
        bot_user_id=bot_user_id_for(entry["channel_id"]),
        basic_id="@" + entry["name"],
        display_name=str(entry.get("display_name") or entry["name"]),
        verified=bool(entry.get("verified", True)),
        rate_limit_per_second=None if rate is None else float(rate),
        webhook_endpoint=entry.get("webhook_endpoint") or None,
    )
