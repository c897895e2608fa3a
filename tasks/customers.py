"""Find or create the one Capillary customer behind a LINE user: INSTORE first, then LINE.

Every step checks before it acts (lookup before register, "already registered" read as "look it
up"), so a task killed between two steps can simply run again without a second customer.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from config import LineChannel
from core.capillary import codes
from core.capillary.client import (
    AddResult,
    Subscription,
    subscription_entries,
    subscription_status,
)
from core.errors import (
    AlreadyRegisteredError,
    ConfigurationError,
    IdentityConflictError,
    InvalidInputError,
    OrgRulesError,
    PermanentError,
)
from workers.outcomes import Outcome
from workers.runtime import Runtime

log = logging.getLogger("linecap.customers")

MISSING_MOBILE_CODES = frozenset({1045, 1006, 1007, 1039, 1043})


@dataclass(frozen=True)
class Identity:
    """What ties the INSTORE and LINE profiles together in Capillary."""

    identifier_type: str  # "mobile" or "externalId"
    identifier_value: str
    first_name: str | None = None

    def identifiers(self) -> list[dict[str, str]]:
        return [{"type": self.identifier_type, "value": self.identifier_value}]


@dataclass(frozen=True)
class Resolved:
    customer_id: int
    customer: dict[str, Any] | None  # the lookup document when we had to look it up


def line_subscription(runtime: Runtime, channel: LineChannel) -> Subscription:
    """The subscription a follow opts in and an unfollow opts out, for this channel."""
    settings = runtime.settings
    return Subscription(settings.subscription_channel, settings.subscription_priority,
                        channel.source_account_id, org_unit_id=settings.org_unit_id or None)


def line_status(runtime: Runtime, channel: LineChannel,
                customer: dict[str, Any] | None) -> str | None:
    """The channel's LINE subscription in a lookup document (embed=subscriptions). Its entries
    name no account, so they are trusted only when linecap serves one channel."""
    return subscription_status(subscription_entries(customer), line_subscription(runtime, channel),
                               only_account=len(runtime.settings.channels) == 1)


def external_id(runtime: Runtime, user_id: str) -> str:
    """The externalId linecap gives a LINE user's profiles: found by a documented lookup."""
    return runtime.settings.external_id_prefix + user_id


def lookup_line_customer(runtime: Runtime, channel: LineChannel,
                         user_id: str) -> dict[str, Any] | None:
    """The customer whose LINE profile (this channel's account) holds the user, with its
    subscriptions; by LINE id, or by the externalId when Capillary refuses that (8013)."""
    settings = runtime.settings
    if settings.line_lookup != "externalId" and not runtime.state.line_lookup_refused():
        try:
            return runtime.capillary.lookup(
                "LINE", settings.lookup_identifier_name, user_id,
                account_id=channel.source_account_id, embed_subscriptions=True)
        except ConfigurationError as exc:
            if codes.LOOKUP_NAME_REFUSED not in exc.codes:
                raise
            if settings.line_lookup == "line":
                raise ConfigurationError(
                    f"Capillary refuses lookups by identifierName="
                    f"{settings.lookup_identifier_name} (8013): set CAPILLARY_LINE_LOOKUP="
                    "externalId (or auto) to find LINE users by the externalId linecap gives "
                    "their LINE profile") from None
            runtime.state.remember_line_lookup_refused()
            log.warning("Capillary refuses lookups by LINE id (8013); finding LINE users by "
                        "externalId from now on")
    return runtime.capillary.lookup("LINE", "externalId", external_id(runtime, user_id),
                                    account_id=channel.source_account_id,
                                    embed_subscriptions=True)


def resolve_customer(runtime: Runtime, channel: LineChannel, user_id: str,
                     cached: int | None = None) -> Resolved | None:
    """The customer holding this LINE id: from the cache, else from a Capillary lookup.

    `cached` is the cache entry when the caller has just read it (None: read it here)."""
    if cached is None:
        cached = runtime.state.cached_customer(channel.channel_id, user_id)
    if cached is not None:
        return Resolved(cached, None)
    customer = lookup_line_customer(runtime, channel, user_id)
    if customer is None:
        return None
    customer_id = int(customer["id"])
    runtime.state.cache_customer(channel.channel_id, user_id, customer_id)
    return Resolved(customer_id, customer)


def identity_for(runtime: Runtime, user_id: str, display_name: str | None) -> Identity | None:
    """A mobile learned for this user (import, CLI, account link), else the configured fallback.

    Returns None when the org parks unknown users until a mobile number arrives.
    """
    hint = runtime.state.identity_hint(user_id)
    name = hint.get("name") or display_name
    if hint.get("mobile"):
        return Identity("mobile", hint["mobile"], name)
    if runtime.settings.unknown_user_strategy == "park":
        return None
    return Identity("externalId", external_id(runtime, user_id), name)


def register_customer(runtime: Runtime, channel: LineChannel, user_id: str,
                      identity: Identity) -> int:
    """Register INSTORE, then LINE with the shared identifier; both must be one customer."""
    try:
        instore_id, loyalty_type = _register_instore(runtime, identity)
        line_id = _register_line(runtime, channel, user_id, identity, loyalty_type)
    except OrgRulesError as exc:
        raise OrgRulesError(f"{exc}: {org_rules_advice(exc.codes, identity)}") from None
    if line_id != instore_id:
        raise IdentityConflictError(
            f"INSTORE profile is customer {instore_id} but LINE profile is customer {line_id}"
        )
    runtime.state.cache_customer(channel.channel_id, user_id, line_id)
    log.info("customer registered", extra={"customer_id": line_id,
                                           "identifier_type": identity.identifier_type})
    return line_id


def org_rules_advice(refused: tuple[int, ...], identity: Identity) -> str:
    """Which setting to change when the org's rules refuse a registration."""
    if identity.identifier_type == "externalId" and MISSING_MOBILE_CODES & set(refused):
        advice = ("this org does not register customers without a mobile; set "
                  "LINECAP_UNKNOWN_USER_STRATEGY=park so a new follower waits for a mobile "
                  "(linecap register, linecap import or account linking)")
        if 1045 in refused:
            advice += (", or CAPILLARY_LOYALTY_TYPE=loyalty if the org registers loyalty "
                       "customers by externalId")
        return advice + "; then replay this dead letter"
    if {8064, 8020} & set(refused):
        return ("the org refuses linecap's externalId format; set LINECAP_EXTERNAL_ID_PREFIX to "
                "a prefix its externalId rules accept, then replay")
    if 1046 in refused:
        return ("the customer is a loyalty member; set CAPILLARY_LOYALTY_TYPE=loyalty, "
                "then replay")
    return ("the org's registration rules require identifiers linecap does not have for this "
            "person; register them in InTouch, then replay")


def register_known_mobile(runtime: Runtime, channel: LineChannel, user_id: str,
                          identity: Identity) -> Outcome:
    """REGISTERED, or ALREADY_THERE when the LINE profile is already on the mobile's customer.

    A LINE user already on a customer without this mobile (e.g. a LINE-only customer made by a
    follow) is a conflict for a person: registering INSTORE first would leave a stray customer.
    """
    existing = lookup_line_customer(runtime, channel, user_id)
    if existing is None:
        register_customer(runtime, channel, user_id, identity)
        return Outcome.REGISTERED
    by_mobile = runtime.capillary.lookup("INSTORE", "mobile", identity.identifier_value)
    if by_mobile is None or int(by_mobile["id"]) != int(existing["id"]):
        raise IdentityConflictError(
            f"LINE user is already customer {existing['id']}, whose INSTORE profile does not "
            "hold this mobile; link them in Member Care"
        )
    runtime.state.cache_customer(channel.channel_id, user_id, int(existing["id"]))
    return Outcome.ALREADY_THERE


def instore_profile(identity: Identity) -> dict[str, Any]:
    """The INSTORE profile of a V2 add (single or batch)."""
    profile: dict[str, Any] = {"source": "INSTORE", "identifiers": identity.identifiers()}
    if identity.first_name:
        profile["firstName"] = identity.first_name
    return profile


def line_profile(runtime: Runtime, channel: LineChannel, user_id: str,
                 identity: Identity) -> dict[str, Any]:
    """The LINE profile of a V2 add: the LINE id, the externalId linecap finds LINE users by,
    and the identifier shared with INSTORE (so Capillary combines them, 8050)."""
    line_identifier = {"type": runtime.settings.lookup_identifier_name, "value": user_id}
    by_external_id = {"type": "externalId", "value": external_id(runtime, user_id)}
    identifiers = [line_identifier, by_external_id]
    identifiers += [i for i in identity.identifiers() if i not in identifiers]
    profile: dict[str, Any] = {
        "source": "LINE",
        "accountId": channel.source_account_id,
        "identifiers": identifiers,
        "commChannels": [{"type": "line", "value": user_id, "primary": True,
                          "verified": True}],
    }
    if identity.first_name:
        profile["firstName"] = identity.first_name
    return profile


def existing_instore(runtime: Runtime, identity: Identity) -> tuple[int, str]:
    """After "already registered" in INSTORE: that customer's id and loyalty type (the LINE
    profile must not convert it: 1046)."""
    existing = runtime.capillary.lookup("INSTORE", identity.identifier_type,
                                        identity.identifier_value)
    if existing is None:
        raise PermanentError("INSTORE says already registered but lookup finds no one")
    info = existing.get("loyaltyInfo")
    found = info.get("loyaltyType") if isinstance(info, dict) else None
    return int(existing["id"]), str(found or runtime.settings.loyalty_type)


def existing_line(runtime: Runtime, channel: LineChannel, user_id: str) -> int:
    """After "already registered" in LINE: the customer holding the LINE user."""
    existing = lookup_line_customer(runtime, channel, user_id)
    if existing is None:
        raise PermanentError("LINE says already registered but lookup finds no one")
    return int(existing["id"])


def warn_dropped(result: AddResult) -> None:
    if codes.IDENTIFIER_DROPPED in result.warnings:
        log.warning("Capillary registered the LINE profile without an identifier another "
                    "customer holds (91007)", extra={"customer_id": result.customer_id})


def _register_instore(runtime: Runtime, identity: Identity) -> tuple[int, str]:
    loyalty_type = runtime.settings.loyalty_type
    try:
        result = runtime.capillary.add_customer(instore_profile(identity), loyalty_type)
    except AlreadyRegisteredError:
        return existing_instore(runtime, identity)
    return result.customer_id, loyalty_type


def _register_line(runtime: Runtime, channel: LineChannel, user_id: str, identity: Identity,
                   loyalty_type: str) -> int:
    try:
        result = runtime.capillary.add_customer(
            line_profile(runtime, channel, user_id, identity), loyalty_type)
    except AlreadyRegisteredError:
        return existing_line(runtime, channel, user_id)
    warn_dropped(result)
    return result.customer_id


def write_line_subscription(runtime: Runtime, channel: LineChannel, customer_id: int,
                            opt_in: bool, reason: str) -> None:
    """Set the channel's LINE subscription; a refusal that names a setting says so."""
    try:
        runtime.capillary.set_subscription(customer_id, line_subscription(runtime, channel),
                                           opt_in, reason)
    except InvalidInputError as exc:
        if "orgunitid" in str(exc).lower():
            raise ConfigurationError(
                f"{exc}: Capillary wants the org unit on subscription updates; set "
                "CAPILLARY_ORG_UNIT_ID to the org unit (concept) id from InTouch") from None
        raise
    except ConfigurationError as exc:
        if codes.CHANNEL_NOT_CONFIGURED & set(exc.codes):
            raise ConfigurationError(
                f"{exc}: the {runtime.settings.subscription_channel} channel is not set up for "
                "subscriptions in InTouch (Organization Settings › Channel Configurations and "
                "a LINE gateway), or CAPILLARY_SUBSCRIPTION_CHANNEL names another") from None
        raise
