"""Request rules that hold in every org: sources, per-account scoping, identifier and channel
names. The sandbox validates before touching the store, so a refused call never half-applies.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from .errors import (
    ACCOUNT_ID_MISSING,
    INVALID_CHANNEL,
    INVALID_PRIORITY,
    INVALID_SOURCE_ACCOUNT,
    INVALID_SUBSCRIPTION_STATUS,
    ApiError,
    invalid_identifier,
    invalid_input,
    invalid_source,
)

# _customer.md § Register Customer, "source*": FACEBOOK, WEB_ENGAGE, WECHAT, INSTORE, MARTJACK,
# TMALL, TAOBAO, JD, ECOMMERCE, WEBSITE, LINE, MOBILE_APP.
SOURCES = frozenset({"INSTORE", "LINE", "WECHAT", "FACEBOOK", "MOBILE_APP", "WEB_ENGAGE",
                     "MARTJACK", "TMALL", "TAOBAO", "JD", "ECOMMERCE", "WEBSITE"})
# _customer.md § Update Subscription Details, "source*": "For sources with multiple accounts
# such as WECHAT, FACEBOOK, MOBILE_APP, or LINE, you also need to provide the respective
# account id."
MULTI_ACCOUNT_SOURCES = frozenset({"LINE", "WECHAT", "FACEBOOK", "MOBILE_APP"})

_MOBILE = re.compile(r"[0-9]{8,15}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def _non_empty(value: str) -> bool:
    return 0 < len(value.strip()) <= 150


# _customer.md § Update Customer Identifiers: "Identifiers: mobile, email, externalId, wechat,
# martjackId, fbId, tmall_uname, cuid, ali_uname, jd_uname, vip_uname, line"; cardnumber from
# § Register Customer. Formats: 1001/1002 invalid mobile/email (§ Status Codes).
_IDENTIFIER_RULES: dict[str, Callable[[str], bool]] = {
    "mobile": lambda v: bool(_MOBILE.fullmatch(v)),
    "email": lambda v: bool(_EMAIL.fullmatch(v)),
    "externalId": _non_empty,
    "cardnumber": _non_empty,
    "cardExternalId": _non_empty,
    "line": _non_empty,
    "wechat": _non_empty,
    "martjackId": _non_empty,
    "fbId": _non_empty,
    "cuid": _non_empty,
}
_CANONICAL_TYPES = {name.lower(): name for name in _IDENTIFIER_RULES}

# _customer.md § Update Subscription Details: "Capillary supports the following channels -
# mobile, email, wechat, whatsapp, ios, android, and line"; the sample answer names MOBILE
# as SMS, so a channel is stored (and answered) under its response name.
CHANNEL_NAMES = {"MOBILE": "SMS", "SMS": "SMS", "EMAIL": "EMAIL", "WECHAT": "WECHAT",
                 "WHATSAPP": "WHATSAPP", "IOS": "IOS", "ANDROID": "ANDROID", "LINE": "LINE"}
PRIORITIES = frozenset({"BULK", "TRANS"})
SUBSCRIPTION_TYPES = frozenset({"OPTIN", "OPTOUT"})

Identifier = tuple[str, str]
Scope = tuple[str, str]
SubscriptionKey = tuple[str, str, str, str]


def canonical_identifier_type(name: Any) -> str:
    """Identifier type names are case-insensitive in requests; stored in canonical case."""
    if not isinstance(name, str) or name.lower() not in _CANONICAL_TYPES:
        raise invalid_identifier(f"unknown identifier type {name!r}")
    return _CANONICAL_TYPES[name.lower()]


def check_source(source: Any, *, allow_all: bool = False) -> str:
    """The source name, or 8012; ``ALL`` only where lookups allow it."""
    if allow_all and source == "ALL":
        return source
    if not isinstance(source, str) or source not in SOURCES:
        raise invalid_source(source)
    return source


def account_key(source: str, account_id: Any, valid_accounts: set[str] | None) -> str:
    """Scope key of a source: the accountId for multi-account sources (8045 when missing,
    8011 when not one of the org's), else ``""``."""
    if source not in MULTI_ACCOUNT_SOURCES:
        return ""
    if account_id is None or (isinstance(account_id, str) and not account_id.strip()):
        raise ApiError(ACCOUNT_ID_MISSING, "Account id is not passed.")
    account = str(account_id)
    if valid_accounts is not None and account not in valid_accounts:
        raise ApiError(INVALID_SOURCE_ACCOUNT, "Invalid source account passed.")
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
        raise invalid_identifier("identifiers must be a non-empty list")
    parsed: list[Identifier] = []
    for item in raw:
        identifier = parse_identifier(item)
        if identifier not in parsed:
            parsed.append(identifier)
    return parsed


def parse_subscription(raw: Any, valid_accounts: set[str] | None) -> tuple[SubscriptionKey, str]:
    """One subscription entry → ((channel, priority, sourceName, accountKey), OPTIN|OPTOUT).

    _customer.md § Update Subscription Details lists the channels in lower case and its sample
    sends upper case: both are accepted.
    """
    if not isinstance(raw, dict):
        raise invalid_input("subscription must be an object")
    channel = str(raw.get("channel", "")).upper()
    priority = str(raw.get("priority", "")).upper()
    kind = str(raw.get("type", "")).upper()
    if channel not in CHANNEL_NAMES:
        raise ApiError(INVALID_CHANNEL, f"Invalid channel type: {raw.get('channel')!r}", 400)
    if priority not in PRIORITIES:
        raise ApiError(INVALID_PRIORITY, f"Invalid priority type: {raw.get('priority')!r}", 400)
    if kind not in SUBSCRIPTION_TYPES:
        raise ApiError(INVALID_SUBSCRIPTION_STATUS,
                       f"Invalid subscription status passed: {raw.get('type')!r}", 400)
    source = check_source(raw.get("sourceName") or "INSTORE")
    account = account_key(source, raw.get("accountId"), valid_accounts)
    return (CHANNEL_NAMES[channel], priority, source, account), kind
