"""Find or create the one Capillary customer behind a LINE user: INSTORE first, then LINE.

Every step checks before it acts (lookup before register, "already registered" read as "look it
up"), so a task killed between two steps can simply run again without a second customer.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from config import LineChannel
from core.capillary.client import CapillaryClient, Subscription
from core.capillary.documents import holds
from core.errors import AlreadyRegisteredError, IdentityConflictError, PermanentError
from workers.outcomes import Outcome
from workers.runtime import Runtime

log = logging.getLogger("linecap.customers")


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
    return Subscription(runtime.settings.subscription_channel,
                        runtime.settings.subscription_priority, channel.source_account_id)


def lookup_line_customer(runtime: Runtime, channel: LineChannel, user_id: str) -> dict | None:
    return runtime.capillary.lookup(
        "LINE", runtime.settings.lookup_identifier_name, user_id,
        account_id=channel.source_account_id, embed_subscriptions=True,
    )


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
    return Identity("externalId", runtime.settings.external_id_prefix + user_id, name)


def register_customer(runtime: Runtime, channel: LineChannel, user_id: str,
                      identity: Identity) -> int:
    """Register INSTORE, then LINE with the shared identifier; both must be one customer."""
    instore_id = _register_instore(runtime.capillary, identity)
    line_id = _register_line(runtime, channel, user_id, identity)
    if line_id != instore_id:
        raise IdentityConflictError(
            f"INSTORE profile is customer {instore_id} but LINE profile is customer {line_id}"
        )
    runtime.state.cache_customer(channel.channel_id, user_id, line_id)
    log.info("customer registered", extra={"customer_id": line_id,
                                           "identifier_type": identity.identifier_type})
    return line_id


def _register_instore(capillary: CapillaryClient, identity: Identity) -> int:
    profile: dict[str, Any] = {"source": "INSTORE", "identifiers": identity.identifiers()}
    if identity.first_name:
        profile["firstName"] = identity.first_name
    try:
        return capillary.add_customer(profile).customer_id
    except AlreadyRegisteredError:
        existing = capillary.lookup("INSTORE", identity.identifier_type,
                                    identity.identifier_value)
        if existing is None:
            raise PermanentError("INSTORE says already registered but lookup finds no one") \
                from None
        return int(existing["id"])


def _register_line(runtime: Runtime, channel: LineChannel, user_id: str, identity: Identity) -> int:
    line_identifier = {"type": runtime.settings.lookup_identifier_name, "value": user_id}
    profile: dict[str, Any] = {
        "source": "LINE",
        "accountId": channel.source_account_id,
        "identifiers": [line_identifier, *identity.identifiers()],
        "commChannels": [{"type": "line", "value": user_id, "primary": True,
                          "verified": True}],
    }
    if identity.first_name:
        profile["firstName"] = identity.first_name
    try:
        return runtime.capillary.add_customer(profile).customer_id
    except AlreadyRegisteredError:
        existing = lookup_line_customer(runtime, channel, user_id)
        if existing is None:
            raise PermanentError("LINE says already registered but lookup finds no one") \
                from None
        return int(existing["id"])


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
    if not holds(existing, "INSTORE", "mobile", identity.identifier_value):
        raise IdentityConflictError(
            f"LINE user is already customer {existing['id']}, whose INSTORE profile does not "
            "hold this mobile; link them in Member Care"
        )
    runtime.state.cache_customer(channel.channel_id, user_id, int(existing["id"]))
    return Outcome.ALREADY_THERE
