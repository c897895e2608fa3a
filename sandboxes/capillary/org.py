"""What varies from one Capillary org to the next, as switches; the default is the strictest
documented reading, so a client that works here works against a strict org.

- Registration rules: "Mandatory identifiers follow the org's registration configuration"
  (reference § Sources, accounts, identifiers); codes 1006/1007/1039/1043 (missing primary
  identifier), 1045 (non-loyalty needs mobile or email), 8064 (externalId validation failed),
  all from _customer.md § Status Codes / § Update Customer Identifiers.
- Lookup identifier names: _customer.md § Fetch Customer Details and § Fetch Customer ID list
  mobile, email, externalId, cardnumber, cardExternalId, wechat, martjackId, fbId; `line` is
  not listed, so the strict org refuses it (8013).
- orgUnitId: marked required on the current subscription reference page, not in the
  repository (reference § Subscriptions, unconfirmed); strict = required.
- Channels: must be configured in InTouch (the LINE gateway) before subscriptions work
  (reference § Subscriptions: 1101, 1109/1110/91022).
- Budgets: per API key, per API, per region (reference § Rate limits); one per API group.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

DOCUMENTED_LOOKUP_NAMES = frozenset({"mobile", "email", "externalId", "cardnumber",
                                     "cardExternalId", "wechat", "martjackId", "fbId"})
API_GROUPS = ("lookup", "add", "bulk", "subscriptions", "identifiers")


@dataclass(frozen=True)
class OrgRules:
    """One org's configuration as the APIs reveal it."""

    # identifiers every registration must carry, in the org's order ("mobile" → 1006)
    required_identifiers: tuple[str, ...] = ("mobile",)
    # 1045: a non_loyalty registration needs a mobile or an email
    non_loyalty_needs_mobile_or_email: bool = True
    # 8064: externalId values must match this (None: any value up to 150 characters)
    external_id_pattern: str | None = None
    # 8013 for any other identifierName in a lookup
    lookup_identifiers: frozenset[str] = DOCUMENTED_LOOKUP_NAMES
    # 403 "Field orgUnitId is mandatory" on subscription writes without it
    subscription_requires_org_unit: bool = True
    # subscriptions for other channels fail with 1109 (no gateway)
    configured_channels: frozenset[str] = frozenset(
        {"SMS", "EMAIL", "WECHAT", "WHATSAPP", "IOS", "ANDROID", "LINE"})
    # calls per minute per API group (absent: no limit); 429 beyond it
    budgets: Mapping[str, int] = field(default_factory=dict)
    # most items one POST /v2/customers/bulk may carry (1060 beyond)
    bulk_limit: int = 10

    def external_id_ok(self, value: str) -> bool:
        if self.external_id_pattern is None:
            return 0 < len(value) <= 150
        return re.fullmatch(self.external_id_pattern, value) is not None


STRICT = OrgRules()
# An org that registers LINE-only customers and accepts lookups by LINE id: what linecap's
# `external_id` strategy and `line` lookups need. Not a documented default; a demo switch.
LENIENT = OrgRules(required_identifiers=(), non_loyalty_needs_mobile_or_email=False,
                   lookup_identifiers=DOCUMENTED_LOOKUP_NAMES | {"line"},
                   subscription_requires_org_unit=False)
PROFILES = {"strict": STRICT, "lenient": LENIENT}


def org_from_spec(spec: str | Mapping[str, Any] | None) -> OrgRules:
    """`strict`, `lenient`, or a JSON object of switches over the strict defaults."""
    if spec is None or spec == "":
        return STRICT
    if isinstance(spec, str):
        if spec in PROFILES:
            return PROFILES[spec]
        try:
            spec = json.loads(spec)
        except json.JSONDecodeError:
            raise ValueError("org must be strict, lenient or a JSON object") from None
    if not isinstance(spec, Mapping):
        raise ValueError("org must be strict, lenient or a JSON object")
    return org_with(PROFILES.get(str(spec.get("profile", "strict")), STRICT),
                    {k: v for k, v in spec.items() if k != "profile"})


def org_with(rules: OrgRules, changes: Mapping[str, Any]) -> OrgRules:
    """A copy with some switches changed; ValueError on an unknown or ill-typed one."""
    known = {f for f in OrgRules.__dataclass_fields__}
    unknown = set(changes) - known
    if unknown:
        raise ValueError(f"unknown org switches: {sorted(unknown)}")
    values: dict[str, Any] = {}
    for name, value in changes.items():
        if name in ("required_identifiers",):
            values[name] = tuple(_strings(name, value))
        elif name in ("lookup_identifiers",):
            values[name] = frozenset(_strings(name, value))
        elif name == "configured_channels":
            values[name] = frozenset(s.upper() for s in _strings(name, value))
        elif name in ("non_loyalty_needs_mobile_or_email", "subscription_requires_org_unit"):
            if not isinstance(value, bool):
                raise ValueError(f"{name} must be true or false")
            values[name] = value
        elif name == "external_id_pattern":
            if value is not None:
                re.compile(str(value))
            values[name] = value
        elif name == "budgets":
            if not isinstance(value, Mapping) or set(value) - set(API_GROUPS) or not all(
                    isinstance(v, int) and not isinstance(v, bool) and v > 0
                    for v in value.values()):
                raise ValueError(f"budgets must map some of {API_GROUPS} to positive integers")
            values[name] = dict(value)
        elif name == "bulk_limit":
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError("bulk_limit must be a positive integer")
            values[name] = value
    return replace(rules, **values)


def org_view(rules: OrgRules) -> dict[str, Any]:
    """The switches as JSON."""
    return {
        "required_identifiers": list(rules.required_identifiers),
        "non_loyalty_needs_mobile_or_email": rules.non_loyalty_needs_mobile_or_email,
        "external_id_pattern": rules.external_id_pattern,
        "lookup_identifiers": sorted(rules.lookup_identifiers),
        "subscription_requires_org_unit": rules.subscription_requires_org_unit,
        "configured_channels": sorted(rules.configured_channels),
        "budgets": dict(rules.budgets),
        "bulk_limit": rules.bulk_limit,
    }


def _strings(name: str, value: Any) -> list[str]:
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{name} must be a list of strings")
    return list(value)
