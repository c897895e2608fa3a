"""Put a LINE user's profile on the customer who proved to be them (by mobile or customer id).

The LINE user may already be a "LINE-only" customer (registered under the `external_id`
strategy before anyone knew their mobile). Linking ends with ONE customer holding INSTORE and
LINE: Capillary's changeIdentifier merges the LINE-only customer into the mobile's customer when
it adds the LINE id there. Only a LINE-only customer is ever merged away; a LINE user found on
a customer with other identifiers is a conflict for a person to look at.

Every step looks before it acts, so a task killed between two calls simply runs again.
Plain functions over a Runtime, like tasks.events.apply.
"""

from __future__ import annotations

import logging
from typing import Any

from config import LineChannel
from core.capillary.client import subscription_status
from core.capillary.documents import identifiers
from core.errors import IdentityConflictError, InvalidInputError, NotFoundError
from core.line import events
from core.link_request import LinkRequest
from core.store.link_sessions import LinkSessionStore
from core.store.state import UserLock
from tasks.customers import Identity, line_subscription, lookup_line_customer, register_customer
from workers.outcomes import Outcome
from workers.runtime import Runtime

log = logging.getLogger("linecap.linking")

_SUBSCRIPTION_BY_STATE = {"followed": "OPTIN", "unfollowed": "OPTOUT"}


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
        customer_id, outcome = _attach_to_customer_id(runtime, channel, request, line_customer)
    lock.extend()
    _carry_subscription(runtime, channel, customer_id, wanted)
    runtime.state.cache_customer(channel.channel_id, user_id, customer_id)
    if request.mobile:
        runtime.state.remember_identity(user_id, request.mobile, request.name)
    if runtime.state.unpark(channel.channel_id, user_id) is not None:
        log.info("parked follow released: its opt-in was applied with the link")
    log.info("LINE user linked", extra={"customer_id": customer_id, "outcome": outcome})
    return outcome


def wanted_subscription(runtime: Runtime, channel: LineChannel, user_id: str,
                        line_customer: dict[str, Any] | None) -> str | None:
    """The LINE subscription to carry over: linecap's last applied follow/unfollow for the
    user, else what the LINE-only customer has in Capillary, else nothing to change."""
    record = runtime.state.user_record(channel.channel_id, user_id)
    parked = runtime.state.parked_event(channel.channel_id, user_id)
    if parked is not None and (record is None or not record.is_newer_than(
            events.timestamp_ms(parked), events.event_id(parked))):
        return "OPTIN"  # a follow parked for want of a mobile: this link brings the mobile
    if record is not None and record.state in _SUBSCRIPTION_BY_STATE:
        return _SUBSCRIPTION_BY_STATE[record.state]
    if line_customer is not None:
        return subscription_status(line_customer.get("subscriptions"),
                                   line_subscription(runtime, channel))
    return None


def is_line_only(runtime: Runtime, customer: dict[str, Any], user_id: str) -> bool:
    """True when the customer's only identifiers are this LINE id and the externalId derived
    from it: the customer linecap registers for an unknown follower."""
    allowed = {(runtime.settings.lookup_identifier_name.lower(), user_id),
               ("externalid", runtime.settings.external_id_prefix + user_id)}
    return all(pair in allowed for pair in identifiers(customer))


def _attach_to_mobile(runtime: Runtime, channel: LineChannel, request: LinkRequest,
                      line_customer: dict[str, Any] | None, lock: UserLock) -> tuple[int, Outcome]:
    user_id, mobile = request.line_user_id, request.mobile or ""
    target = runtime.capillary.lookup("INSTORE", "mobile", mobile)
    if line_customer is None:
        # No LINE profile anywhere yet: INSTORE (found or registered) then LINE with the mobile.
        if target is not None:
            _refuse_other_line_id(runtime, channel, target, user_id)
        identity = Identity("mobile", mobile, request.name)
        return register_customer(runtime, channel, user_id, identity), Outcome.LINKED
    line_id = int(line_customer["id"])
    if target is not None and int(target["id"]) == line_id:
        return line_id, Outcome.ALREADY_LINKED
    _refuse_unless_line_only(runtime, line_customer, user_id)
    lock.extend()
    if target is None:
        # Nobody has this mobile: the LINE-only customer becomes the mobile's customer.
        runtime.capillary.change_identifier(line_id, "INSTORE", None,
                                       add=[{"type": "mobile", "value": mobile}])
    else:
        _refuse_other_line_id(runtime, channel, target, user_id)
        runtime.capillary.change_identifier(int(target["id"]), "LINE", channel.source_account_id,
                                       add=[_line_identifier(runtime, user_id)])
    return _confirm_one_customer(runtime, channel, user_id, mobile), Outcome.LINKED


def _attach_to_customer_id(runtime: Runtime, channel: LineChannel, request: LinkRequest,
                           line_customer: dict[str, Any] | None) -> tuple[int, Outcome]:
    user_id, customer_id = request.line_user_id, int(request.customer_id or 0)
    if line_customer is not None and int(line_customer["id"]) == customer_id:
        return customer_id, Outcome.ALREADY_LINKED
    try:
        runtime.capillary.get_subscriptions(customer_id)  # the cheapest "does it exist" we have
    except NotFoundError:
        raise InvalidInputError(f"customer {customer_id} not found in Capillary") from None
    if line_customer is not None:
        _refuse_unless_line_only(runtime, line_customer, user_id)
    runtime.capillary.change_identifier(customer_id, "LINE", channel.source_account_id,
                                   add=[_line_identifier(runtime, user_id)])
    found = lookup_line_customer(runtime, channel, user_id)
    if found is None or int(found["id"]) != customer_id:
        raise IdentityConflictError(
            f"after adding the LINE id to customer {customer_id} a LINE lookup finds "
            f"{found['id'] if found else 'no one'}")
    return customer_id, Outcome.LINKED


def _refuse_unless_line_only(runtime: Runtime, line_customer: dict[str, Any], user_id: str) -> None:
    if not is_line_only(runtime, line_customer, user_id):
        raise IdentityConflictError(
            f"the LINE user is already on customer {line_customer['id']}, which has other "
            "identifiers; merge or unlink in Member Care, then replay")


def _refuse_other_line_id(runtime: Runtime, channel: LineChannel, target: dict[str, Any],
                          user_id: str) -> None:
    kind = runtime.settings.lookup_identifier_name.lower()
    for name, value in identifiers(target, "LINE", channel.source_account_id):
        if name == kind and value != user_id:
            raise IdentityConflictError(
                f"customer {target['id']} already has another LINE user for this account; "
                "unlink it in Member Care, then replay")


def _confirm_one_customer(runtime: Runtime, channel: LineChannel, user_id: str, mobile: str) -> int:
    """Both lookups must now name one customer (whichever survived the merge)."""
    by_line = lookup_line_customer(runtime, channel, user_id)
    by_mobile = runtime.capillary.lookup("INSTORE", "mobile", mobile)
    if by_line is None or by_mobile is None or int(by_line["id"]) != int(by_mobile["id"]):
        raise IdentityConflictError(
            f"after linking, LINE lookup finds {by_line['id'] if by_line else 'no one'} but "
            f"mobile lookup finds {by_mobile['id'] if by_mobile else 'no one'}")
    return int(by_line["id"])


def _carry_subscription(runtime: Runtime, channel: LineChannel, customer_id: int,
                        wanted: str | None) -> None:
    if wanted is None:
        return
    subscription = line_subscription(runtime, channel)
    current = runtime.capillary.get_subscriptions(customer_id)
    if subscription_status(current, subscription) == wanted:
        return
    runtime.capillary.set_subscription(customer_id, subscription, wanted == "OPTIN",
                                  "LINE account link")
    log.info("subscription carried over", extra={"customer_id": customer_id,
                                                 "subscription": wanted})


def _line_identifier(runtime: Runtime, user_id: str) -> dict[str, str]:
    return {"type": runtime.settings.lookup_identifier_name, "value": user_id}


def _note_on_session(runtime: Runtime, request: LinkRequest, outcome: str) -> None:
    if request.session:
        LinkSessionStore(runtime.redis, runtime.settings.link_nonce_ttl_seconds).record_outcome(
            request.session, outcome)
