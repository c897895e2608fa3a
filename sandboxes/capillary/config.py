"""Sandbox settings: credentials, accounts, the org's rules and the fault knobs that can change
at run time."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from .org import STRICT, OrgRules

FAULT_FIELDS = frozenset(
    {
        "rpm_limit",
        "latency_ms",
        "error_rate",
        "error_statuses",
        "rate_429",
        "retry_after_header",
        "retry_after_seconds",
        "seed",
        "not_found_status",
    }
)

ENV_CREDENTIALS = {
    "CAPILLARY_SANDBOX_USERNAME": "username",
    "CAPILLARY_SANDBOX_PASSWORD": "password",
    "CAPILLARY_SANDBOX_OAUTH_KEY": "oauth_key",
    "CAPILLARY_SANDBOX_OAUTH_SECRET": "oauth_secret",
}


@dataclass
class SandboxConfig:
    """Startup configuration; treated as immutable — live changes go through ``replace``."""

    username: str = "sandbox-till"
    password: str = "sandbox-password"
    oauth_key: str = "sandbox-key"
    oauth_secret: str = "sandbox-secret"
    token_ttl_seconds: int = 300
    valid_accounts: set[str] | None = None
    rpm_limit: int | None = None
    latency_ms: int = 0
    error_rate: float = 0.0
    error_statuses: tuple[int, ...] = (500, 502, 503)
    rate_429: float = 0.0
    retry_after_header: bool = True
    retry_after_seconds: int = 1
    seed: int = 0
    not_found_status: int = 400
    fail_next: tuple[dict[str, Any], ...] = field(default_factory=tuple)
    org: OrgRules = STRICT

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> SandboxConfig:
        """Defaults, then CAPILLARY_SANDBOX_* credential variables, then explicit overrides."""
        env = os.environ if environ is None else environ
        values = {attr: env[name] for name, attr in ENV_CREDENTIALS.items() if env.get(name)}
        values.update(overrides)
        return cls(**values)

    def fault_view(self) -> dict[str, Any]:
        """The live-tunable fields as JSON-friendly values."""
        view = {name: getattr(self, name) for name in sorted(FAULT_FIELDS)}
        view["error_statuses"] = list(self.error_statuses)
        return view


def _int(name: str, value: Any, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer")
    if value < low or (high is not None and value > high):
        raise ValueError(f"{name} out of range")
    return value


def _rate(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ValueError(f"{name} must be a number between 0 and 1")
    return float(value)


def _validate(name: str, value: Any) -> Any:
    if name == "rpm_limit":
        return None if value is None else _int(name, value, 1)
    if name in ("latency_ms", "retry_after_seconds"):
        return _int(name, value, 0)
    if name in ("error_rate", "rate_429"):
        return _rate(name, value)
    if name == "error_statuses":
        if not isinstance(value, list | tuple) or not value:
            raise ValueError("error_statuses must be a non-empty list")
        return tuple(_int(name, status, 400, 599) for status in value)
    if name == "retry_after_header":
        if not isinstance(value, bool):
            raise ValueError("retry_after_header must be a boolean")
        return value
    if name == "seed":
        return _int(name, value, -(2**63))
    if name == "not_found_status":
        return _int(name, value, 200, 599)
    raise ValueError(f"unknown fault field {name}")


def apply_fault_update(config: SandboxConfig, changes: Mapping[str, Any]) -> SandboxConfig:
    """Validated copy of ``config`` with fault fields changed; ValueError on any bad field."""
    unknown = set(changes) - FAULT_FIELDS
    if unknown:
        raise ValueError(f"unknown fault fields: {sorted(unknown)}")
    return replace(config, **{name: _validate(name, value) for name, value in changes.items()})
