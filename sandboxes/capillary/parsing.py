"""Turn request bodies and query strings into validated store inputs (or ApiErrors)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import request

from .errors import invalid_input
from .models import Profile
from .validation import (
    Identifier,
    account_key,
    canonical_identifier_type,
    check_source,
    parse_identifiers,
)

Scope = tuple[str, str]


def json_body() -> dict[str, Any]:
    """The request's JSON object; anything else is Capillary's generic invalid input."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise invalid_input("request body must be a JSON object")
    return body


def _text(raw: Mapping[str, Any], key: str) -> str:
    value = raw.get(key)
    return value if isinstance(value, str) else ""


def parse_profile(raw: Any, valid_accounts: set[str] | None) -> Profile:
    """One Add Customer profile: source and account first, then identifiers."""
    if not isinstance(raw, dict):
        raise invalid_input("profile must be an object")
    source = check_source(raw.get("source"))
    account = account_key(source, raw.get("accountId"), valid_accounts)
    identifiers = parse_identifiers(raw.get("identifiers"))
    channels = raw.get("commChannels") or []
    if not isinstance(channels, list) or not all(isinstance(c, dict) for c in channels):
        raise invalid_input("commChannels must be a list of objects")
    return Profile(
        source=source,
        account_id=account,
        identifiers=identifiers,
        first_name=_text(raw, "firstName"),
        last_name=_text(raw, "lastName"),
        comm_channels=channels,
    )


def parse_profiles(body: Mapping[str, Any], valid_accounts: set[str] | None) -> list[Profile]:
    """All profiles of an Add Customer body (clients send one; a list is allowed)."""
    raw = body.get("profiles")
    if not isinstance(raw, list) or not raw:
        raise invalid_input("profiles must be a non-empty list")
    return [parse_profile(item, valid_accounts) for item in raw]


def loyalty_type(body: Mapping[str, Any]) -> str:
    """``loyaltyInfo.loyaltyType`` or Capillary's default ``non_loyalty``."""
    info = body.get("loyaltyInfo")
    value = info.get("loyaltyType") if isinstance(info, dict) else None
    return value if isinstance(value, str) and value else "non_loyalty"


def scope_from_query(args: Mapping[str, str], valid_accounts: set[str] | None) -> Scope:
    """``source`` (+ ``accountId`` for multi-account sources) of changeIdentifier."""
    source = check_source(args.get("source"))
    return source, account_key(source, args.get("accountId"), valid_accounts)


def lookup_from_query(
    args: Mapping[str, str], valid_accounts: set[str] | None
) -> tuple[Scope | None, Identifier]:
    """Lookup parameters → (scope or None for ``source=ALL``, identifier)."""
    source = check_source(args.get("source"), allow_all=True)
    kind = canonical_identifier_type(args.get("identifierName"))
    value = args.get("identifierValue")
    if not value:
        raise invalid_input("identifierValue missing")
    if source == "ALL":
        return None, (kind, value)
    return (source, account_key(source, args.get("accountId"), valid_accounts)), (kind, value)
