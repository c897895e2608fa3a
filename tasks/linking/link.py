"""Put a LINE user's profile on the customer who proved to be them (by mobile or customer id).

The LINE user may already be a "LINE-only" customer L (registered under the `external_id`
strategy before anyone knew their mobile). Linking ends with ONE customer holding INSTORE and
LINE, the documented way (_customer.md § Update Customer Identifiers): changeIdentifier on L,
in L's LINE source and account, adding an identifier the member C holds in another source (the
mobile of C's INSTORE profile). Capillary then merges L into C: "The new account will be a
victim account and the existing account is a survivor account" (warning 8051). Adding the LINE
id to C instead would be refused, since L holds it in that account (8008).

Only a LINE-only customer is ever merged away; a LINE user found on a customer with other
identifiers is a conflict for a person to look at, as are 8007/8008 and 8053/8066/8067.
Every step looks before it acts, so a task killed between two calls simply runs again.
Plain functions over a Runtime, like tasks.events.apply.
"""

from __future__ import annotations

import logging
from typing import Any

from config import LineChannel
from core.capillary.client import subscription_status
from core.capillary.documents import identifier_value, identifiers
from core.errors import IdentityConflictError, InvalidInputError, MergedAwayError
from core.line import events
from core.link_request import LinkRequest
from core.store.link_sessions import LinkSessionStore
from core.store.state import UserLock
from tasks.customers import (
    Identity,
    external_id,
    line_status,
    line_subscription,
    lookup_line_customer,
    register_customer,
    write_line_subscription,
)
from workers.outcomes import Outcome
from workers.runtime import Runtime

log = logging.getLogger("linecap.linking")

_SUBSCRIPTION_BY_STATE = {"followed": "OPTIN", "unfollowed": "OPTOUT"}
_SUBSCRIPTION_BY_EVENT = {"follow": "OPTIN", "unfollow": "OPTOUT"}
# What identifies a member across sources, in the order linecap tries them.
_SHARED_IDENTIFIERS = ("mobile", "email", "externalId")


def apply_link(runtime: Runtime, channel_id: str, request: LinkRequest) -> Outcome:
    """Link once per link id, under the user's lock (the same lock their follow events take)."""
    channel = runtime.channel(channel_id)
    link_id = request.link_id(channel)
    with runtime.state.user_lock(channel_id, request.line_user_id) as lock:
        previous = runtime.state.outcome_of(link_id)
        if previous is not None:
            _note_on_session(runtime, request, previous)
            return Outcome.DUPLICATE
        outcome = link_customer(runtime, channel, request, lock)
        runtime.state.mark_event(link_id, outcome)
    _note_on_session(runtime, request, outcome)
    return outcome


def link_customer(runtime: Runtime, channel: LineChannel, request: LinkRequest,
                  lock: UserLock) -> Outcome:
    user_id = request.line_user_id
    line_customer = lookup_line_customer(runtime, channel, user_id)
    wanted = wanted_subscription(runtime, channel, user_id, line_customer)
    if request.mobile:
        customer_id, outcome = _attach_to_mobile(runtime, channel, request, line_customer, lock)
    else:
        customer_id, outcome = _attach_to_customer_id(runtime, channel, request, line_customer,
                                                      lock)
    lock.extend()
    _carry_subscription(runtime, channel, customer_id, wanted)
    runtime.state.cache_customer(channel.channel_id, user_id, customer_id)
    if request.mobile:
        runtime.state.remember_identity(user_id, request.mobile, request.name)
    if runtime.state.unpark(channel.channel_id, user_id) is not None:
        log.info("parked event released: its subscription was applied with the link")
    log.info("LINE user linked", extra={"customer_id": customer_id, "outcome": outcome})
    return outcome


def wanted_subscription(runtime: Runtime, channel: LineChannel, user_id: str,
                        line_customer: dict[str, Any] | None) -> str | None:
    """The LINE subscription to carry over: an event parked for want of a mobile (this link
    brings it), else linecap's last applied follow/unfollow for the user, else what the
    LINE-only customer has in Capillary, else nothing to change."""
    record = runtime.state.user_record(channel.channel_id, user_id)
    parked = runtime.state.parked_event(channel.channel_id, user_id)
    if parked is not None and (record is None or not record.is_newer_than(
            events.timestamp_ms(parked), events.event_id(parked))):
        return _SUBSCRIPTION_BY_EVENT.get(events.event_type(parked))
    if record is not None and record.state in _SUBSCRIPTION_BY_STATE:
        return _SUBSCRIPTION_BY_STATE[record.state]
    if line_customer is not None:
        return line_status(runtime, channel, line_customer)
    return None


def is_line_only(runtime: Runtime, customer: dict[str, Any], user_id: str) -> bool:
    """True when the customer's only identifiers, in every source, are this LINE id and the
    externalId derived from it: the customer linecap registers for an unknown follower.
    `customer` must show every source (a fetch with source=ALL)."""
    allowed = {(runtime.settings.lookup_identifier_name.lower(), user_id),
               ("externalid", external_id(runtime, user_id))}
    return all(pair in allowed for pair in identifiers(customer))


def _attach_to_mobile(runtime: Runtime, channel: LineChannel, request: LinkRequest,
                      line_customer: dict[str, Any] | None,
                      lock: UserLock) -> tuple[int, Outcome]:
    user_id, mobile = request.line_user_id, request.mobile or ""
    target = runtime.capillary.lookup("INSTORE", "mobile", mobile)
    if line_customer is None:
        # No LINE profile anywhere yet: INSTORE (found or registered) then LINE with the mobile.
        if target is not None:
            _refuse_other_line_id(runtime, channel, int(target["id"]), user_id)
        identity = Identity("mobile", mobile, request.name)
        return register_customer(runtime, channel, user_id, identity), Outcome.LINKED
    line_id = int(line_customer["id"])
    if target is not None and int(target["id"]) == line_id:
        return line_id, Outcome.ALREADY_LINKED
    _refuse_unless_line_only(runtime, line_id, user_id)
    lock.extend()
    if target is None:
        # Nobody has the mobile: the LINE-only customer becomes the mobile's customer.
        _add_identifier(runtime, line_id, "INSTORE", None, {"type": "mobile", "value": mobile})
    else:
        # The member holds it in INSTORE: adding it to the LINE-only customer's LINE profile
        # merges that customer into the member (victim in the path, survivor the holder).
        _refuse_other_line_id(runtime, channel, int(target["id"]), user_id)
        _add_identifier(runtime, line_id, "LINE", channel.source_account_id,
                        {"type": "mobile", "value": mobile})
    return _confirm_one_customer(runtime, channel, user_id, mobile), Outcome.LINKED


def _attach_to_customer_id(runtime: Runtime, channel: LineChannel, request: LinkRequest,
                           line_customer: dict[str, Any] | None,
                           lock: UserLock) -> tuple[int, Outcome]:
    user_id, customer_id = request.line_user_id, int(request.customer_id or 0)
    if line_customer is not None and int(line_customer["id"]) == customer_id:
        return customer_id, Outcome.ALREADY_LINKED
    member = _fetch(runtime, customer_id)
    if member is None:
        raise InvalidInputError(f"customer {customer_id} not found in Capillary")
    _refuse_other_line_id(runtime, channel, customer_id, user_id, member)
    lock.extend()
    if line_customer is None:
        # The member gets a LINE profile in this account holding the LINE id.
        _add_identifier(runtime, customer_id, "LINE", channel.source_account_id,
                        {"type": runtime.settings.lookup_identifier_name, "value": user_id})
    else:
        line_id = int(line_customer["id"])
        _refuse_unless_line_only(runtime, line_id, user_id)
        shared = _shared_identifier(member)
        if shared is None:
            raise IdentityConflictError(
                f"customer {customer_id} has no mobile, email or externalId in another source "
                "to merge the LINE-only customer into; merge them in Member Care, then replay")
        _add_identifier(runtime, line_id, "LINE", channel.source_account_id, shared)
    found = lookup_line_customer(runtime, channel, user_id)
    if found is None or int(found["id"]) != customer_id:
        raise IdentityConflictError(
            f"after linking to customer {customer_id} a LINE lookup finds "
            f"{found['id'] if found else 'no one'}")
    return customer_id, Outcome.LINKED


def _add_identifier(runtime: Runtime, customer_id: int, source: str, account_id: str | None,
                    identifier: dict[str, str]) -> int:
    """changeIdentifier adding one identifier; a customer already merged away (re-run after a
    crash) is left for the confirming lookups to judge."""
    try:
        return runtime.capillary.change_identifier(customer_id, source, account_id,
                                                   add=[identifier])
    except MergedAwayError:
        log.info("customer already merged into another", extra={"customer_id": customer_id})
        return customer_id


def _fetch(runtime: Runtime, customer_id: int) -> dict[str, Any] | None:
    try:
        return runtime.capillary.customer(customer_id, "ALL")
    except MergedAwayError:
        raise IdentityConflictError(f"customer {customer_id} was merged into another; link to "
                                    "the survivor") from None


def _shared_identifier(member: dict[str, Any]) -> dict[str, str] | None:
    """An identifier of the member's INSTORE profile that also identifies them elsewhere."""
    instore = next((p for p in member.get("profiles") or []
                    if str(p.get("source", "")).upper() == "INSTORE"), None)
    for name in _SHARED_IDENTIFIERS:
        value = identifier_value(instore, name)
        if value:
            return {"type": name, "value": value}
    return None


def _refuse_unless_line_only(runtime: Runtime, line_customer_id: int, user_id: str) -> None:
    customer = _fetch(runtime, line_customer_id)
    if customer is not None and not is_line_only(runtime, customer, user_id):
        raise IdentityConflictError(
            f"the LINE user is already on customer {line_customer_id}, which has other "
            "identifiers; merge or unlink in Member Care, then replay")


def _refuse_other_line_id(runtime: Runtime, channel: LineChannel, customer_id: int,
                          user_id: str, member: dict[str, Any] | None = None) -> None:
    member = member if member is not None else _fetch(runtime, customer_id)
    kind = runtime.settings.lookup_identifier_name.lower()
    for name, value in identifiers(member, "LINE", channel.source_account_id):
        if name == kind and value != user_id:
            raise IdentityConflictError(
                f"customer {customer_id} already has another LINE user for this account; "
                "unlink it in Member Care, then replay")


def _confirm_one_customer(runtime: Runtime, channel: LineChannel, user_id: str,
                          mobile: str) -> int:
    """Both lookups must now name one customer (the survivor of the merge)."""
    by_line = lookup_line_customer(runtime, channel, user_id)
    by_mobile = runtime.capillary.lookup("INSTORE", "mobile", mobile)
    if by_line is None or by_mobile is None or int(by_line["id"]) != int(by_mobile["id"]):
        raise IdentityConflictError(
            f"after linking, LINE lookup finds {by_line['id'] if by_line else 'no one'} but "
            f"mobile lookup finds {by_mobile['id'] if by_mobile else 'no one'}")
    return int(by_line["id"])


def _carry_subscription(runtime: Runtime, channel: LineChannel, customer_id: int,
                        wanted: str | None) -> None:
    """The survivor's own subscription list names accounts, so it can be trusted."""
    if wanted is None:
        return
    current = runtime.capillary.get_subscriptions(customer_id)
    if subscription_status(current, line_subscription(runtime, channel)) == wanted:
        return
    write_line_subscription(runtime, channel, customer_id, wanted == "OPTIN",
                            "LINE account link")
    log.info("subscription carried over", extra={"customer_id": customer_id,
                                                 "subscription": wanted})


def _note_on_session(runtime: Runtime, request: LinkRequest, outcome: str) -> None:
    if request.session:
        LinkSessionStore(runtime.redis, runtime.settings.link_nonce_ttl_seconds).record_outcome(
            request.session, outcome)
