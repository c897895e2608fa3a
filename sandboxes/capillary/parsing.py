"""Turn request bodies and query strings into validated store inputs (or ApiErrors)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import request

from .errors import INVALID_IDENTIFIER_NAME, ApiError, invalid_input
from .models import Profile
from .org import OrgRules
from .validation import (
    Identifier,
    Scope,
    account_key,
    canonical_identifier_type,
    check_source,
    parse_identifiers,
)


def json_body() -> Any:
    """The request's JSON; anything unparsable is Capillary's generic invalid input."""
    body = request.get_json(silent=True)
    if body is None:
        raise invalid_input("request body must be JSON")
    return body


def json_object() -> dict[str, Any]:
    body = json_body()
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
    return Profile(source=source, account_id=account, identifiers=identifiers,
                   first_name=_text(raw, "firstName"), last_name=_text(raw, "lastName"),
                   comm_channels=channels)


def parse_registration(body: Any, valid_accounts: set[str] | None) -> tuple[list[Profile], str]:
    """(profiles, loyaltyType) of one V2 add body. _customer.md § Register Customer marks
    loyaltyType mandatory ("loyaltyType*")."""
    if not isinstance(body, dict):
        raise invalid_input("a registration must be a JSON object")
    raw = body.get("profiles")
    if not isinstance(raw, list) or not raw:
        raise invalid_input("profiles must be a non-empty list")
    info = body.get("loyaltyInfo")
    loyalty = info.get("loyaltyType") if isinstance(info, dict) else None
    if not isinstance(loyalty, str) or not loyalty:
        raise invalid_input("loyaltyInfo.loyaltyType is mandatory")
    return [parse_profile(item, valid_accounts) for item in raw], loyalty


def scope_from_query(args: Mapping[str, str], valid_accounts: set[str] | None) -> Scope:
    """``source`` (+ ``accountId`` for multi-account sources) of changeIdentifier."""
    source = check_source(args.get("source"))
    return source, account_key(source, args.get("accountId"), valid_accounts)


def lookup_from_query(args: Mapping[str, str], valid_accounts: set[str] | None,
                      rules: OrgRules) -> tuple[Scope | None, Identifier]:
    """Lookup parameters → (scope or None for ``source=ALL``, identifier). An identifierName
    the org does not look up by is 8013 (_customer.md § Fetch Customer ID)."""
    source = check_source(args.get("source"), allow_all=True)
    name = args.get("identifierName")
    try:
        kind = canonical_identifier_type(name)
    except ApiError:
        kind = None
    if kind is None or kind not in rules.lookup_identifiers:
        raise ApiError(INVALID_IDENTIFIER_NAME, "Customer identifier is invalid. Also check if "
                                                "the parameter identifierName is passed "
                                                "correctly.")
    value = args.get("identifierValue")
    if not value:
        raise invalid_input("identifierValue missing")
    if source == "ALL":
        return None, (kind, value)
    return (source, account_key(source, args.get("accountId"), valid_accounts)), (kind, value)
