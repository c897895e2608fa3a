"""Input rules Capillary enforces: sources, per-account scoping and identifier formats.

The sandbox validates before touching the store, so a rejected call never half-applies.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from .errors import (
    ACCOUNT_ID_MISSING,
    INVALID_SOURCE_ACCOUNT,
    ApiError,
    invalid_identifier,
    invalid_input,
    invalid_source,
)

SOURCES = frozenset(
    {
        "INSTORE",
        "LINE",
        "WECHAT",
        "FACEBOOK",
        "MOBILE_APP",
        "WEB_ENGAGE",
        "MARTJACK",
        "TMALL",
        "TAOBAO",
        "JD",
        "ECOMMERCE",
        "WEBSITE",
    }
)
MULTI_ACCOUNT_SOURCES = frozenset({"LINE", "WECHAT", "FACEBOOK"})
# Identifiers that make Capillary combine profiles across sources (never `line`).
SHARED_IDENTIFIER_TYPES = frozenset({"mobile", "email", "externalId"})

_MOBILE = re.compile(r"^\d{8,15}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_LINE_ID = re.compile(r"^U[0-9a-f]{32}$")


def _non_empty(value: str) -> bool:
    return 0 < len(value.strip()) <= 150


_IDENTIFIER_RULES: dict[str, Callable[[str], bool]] = {
    "mobile": lambda v: bool(_MOBILE.match(v)),
    "email": lambda v: bool(_EMAIL.match(v)),
    "externalId": _non_empty,
    "cardnumber": _non_empty,
    "line": lambda v: bool(_LINE_ID.match(v)),
    "wechat": _non_empty,
    "fbId": _non_empty,
}
_CANONICAL_TYPES = {name.lower(): name for name in _IDENTIFIER_RULES}

SUBSCRIPTION_CHANNELS = frozenset(
    {"SMS", "MOBILE", "EMAIL", "WECHAT", "LINE", "PUSH", "MOBILE_PUSH", "WHATSAPP", "FACEBOOK"}
)
SUBSCRIPTION_PRIORITIES = frozenset({"BULK", "TRANS"})
SUBSCRIPTION_TYPES = frozenset({"OPTIN", "OPTOUT"})

Identifier = tuple[str, str]
SubscriptionKey = tuple[str, str, str, str]


def canonical_identifier_type(name: Any) -> str:
    """Identifier type names are case-insensitive in requests; stored in canonical case."""
    if not isinstance(name, str) or name.lower() not in _CANONICAL_TYPES:
        raise invalid_identifier(f"unknown identifier type {name!r}")
    return _CANONICAL_TYPES[name.lower()]


def check_source(source: Any, *, allow_all: bool = False) -> str:
    """Return the source name or raise 1101; ``ALL`` only where lookup allows it."""
    if allow_all and source == "ALL":
        return source
    if not isinstance(source, str) or source not in SOURCES:
        raise invalid_source(source)
    return source


def account_key(source: str, account_id: Any, valid_accounts: set[str] | None) -> str:
    """Scope key of a source: the accountId for multi-account sources, else ``""``."""
    if source not in MULTI_ACCOUNT_SOURCES:
        return ""
    if account_id is None or (isinstance(account_id, str) and not account_id.strip()):
        raise ApiError(ACCOUNT_ID_MISSING, "accountId missing")
    account = str(account_id)
    if valid_accounts is not None and account not in valid_accounts:
        raise ApiError(INVALID_SOURCE_ACCOUNT, "Invalid source account")
    return account


def parse_identifier(raw: Any) -> Identifier:
    """One ``{"type", "value"}`` pair, validated for its type's format."""
    if not isinstance(raw, dict):
        raise invalid_identifier("identifier must be an object with type and value")
    kind = canonical_identifier_type(raw.get("type"))
    value = raw.get("value")
    if not isinstance(value, str) or not _IDENTIFIER_RULES[kind](value):
        raise invalid_identifier(f"malformed {kind} value {value!r}")
    return kind, value


def parse_identifiers(raw: Any, *, allow_empty: bool = False) -> list[Identifier]:
    """A list of identifiers, de-duplicated in order."""
    if raw is None and allow_empty:
        return []
    if not isinstance(raw, list) or (not raw and not allow_empty):
        raise invalid_input("identifiers must be a non-empty list")
    parsed: list[Identifier] = []
    for item in raw:
        identifier = parse_identifier(item)
        if identifier not in parsed:
            parsed.append(identifier)
    return parsed


def parse_subscription(raw: Any, valid_accounts: set[str] | None) -> tuple[SubscriptionKey, str]:
    """One subscription entry → ((channel, priority, sourceName, accountKey), OPTIN|OPTOUT)."""
    if not isinstance(raw, dict):
        raise invalid_input("subscription must be an object")
    channel, priority, kind = raw.get("channel"), raw.get("priority"), raw.get("type")
    if channel not in SUBSCRIPTION_CHANNELS:
        raise invalid_input(f"invalid channel {channel!r}")
    if priority not in SUBSCRIPTION_PRIORITIES:
        raise invalid_input(f"invalid priority {priority!r}")
    if kind not in SUBSCRIPTION_TYPES:
        raise invalid_input(f"invalid subscription type {kind!r}")
    if raw.get("sourceName") is None:
        raise invalid_input("sourceName missing")
    source = check_source(raw.get("sourceName"))
    account = account_key(source, raw.get("accountId"), valid_accounts)
    return (channel, priority, source, account), kind


def parse_subscriptions(
    body: dict[str, Any], valid_accounts: set[str] | None
) -> list[tuple[SubscriptionKey, str]]:
    """All entries of a subscriptions request; any bad entry rejects the whole call."""
    raw = body.get("subscriptions")
    if not isinstance(raw, list) or not raw:
        raise invalid_input("subscriptions must be a non-empty list")
    return [parse_subscription(item, valid_accounts) for item in raw]
