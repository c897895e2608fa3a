"""Apply one LINE event to Capillary exactly once in effect, in per-user timestamp order.

Plain functions over a Runtime (no Celery here), so the same code serves the task, the CLI and
the tests. Returns the Outcome; raises the error classes of core.errors.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from config import LineChannel
from core.capillary.client import subscription_status
from core.errors import LinecapError, NotFoundError, TransientError
from core.line import events
from core.store.state import UserLock, UserView
from tasks.customers import identity_for, line_subscription, register_customer, resolve_customer
from tasks.linking.account_link import apply_account_link
from workers.outcomes import Outcome
from workers.runtime import Runtime

log = logging.getLogger("linecap.apply")


def apply_event(runtime: Runtime, channel_id: str, event: dict[str, Any]) -> Outcome:
    channel = runtime.channel(channel_id)
    kind = events.event_type(event)
    if kind == "accountLink":  # no follow state, no order check; may come without a source
        return apply_account_link(runtime, channel, event)
    if kind not in events.HANDLED_EVENT_TYPES:
        log.info("event ignored", extra={"event_type": kind[:32], "reason": "type"})
        return Outcome.IGNORED
    # Checked again here, not only by the receiver: a message can come from elsewhere (a
    # replayed dead letter, an older receiver), and the userId goes into LINE's URLs.
    problem = events.event_problem(event, int(time.time() * 1000))
    if problem:
        log.warning("event refused: %s; nothing changed", problem)
        return Outcome.INVALID
    user_id = events.user_id(event) or ""
    event_id = events.event_id(event)
    with runtime.state.user_lock(channel_id, user_id) as lock:
        # Read under the lock: no other event of this user can change it until we finish.
        view = runtime.state.user_view(event_id, channel_id, user_id)
        if view.outcome:
            return Outcome.DUPLICATE
        timestamp = events.timestamp_ms(event)
        record = view.record
        if record is not None and record.is_newer_than(timestamp, event_id):
            runtime.state.mark_event(event_id, Outcome.STALE)
            log.info("older than the last applied event; skipped",
                     extra={"last_applied_event": record.last_event_id})
            return Outcome.STALE
        if kind == "follow":
            outcome = _follow(runtime, channel, user_id, event, lock, view)
        else:
            outcome = _unfollow(runtime, channel, user_id, timestamp, event_id, view)
        if outcome != Outcome.PARKED:  # a parked follow is applied later, when a mobile arrives
            new_state = "followed" if kind == "follow" else "unfollowed"
            runtime.state.finish_event(event_id, outcome, channel_id, user_id, timestamp,
                                       new_state)
    return outcome


def _follow(runtime: Runtime, channel: LineChannel, user_id: str, event: dict, lock: UserLock,
            view: UserView) -> Outcome:
    resolved = resolve_customer(runtime, channel, user_id, view.cached_customer)
    if resolved is None:
        profile = _line_profile(runtime, channel, user_id)
        identity = identity_for(runtime, user_id, profile.get("displayName") if profile else None)
        if identity is None:
            runtime.state.park(channel.channel_id, user_id, event)
            log.info("follow parked until a mobile number is known")
            return Outcome.PARKED
        lock.extend()
        customer_id = register_customer(runtime, channel, user_id, identity)
        lock.extend()
        _set_subscription(runtime, channel, user_id, customer_id, opt_in=True)
        return Outcome.APPLIED
    _sync_subscription(runtime, channel, user_id, resolved.customer_id, resolved.customer,
                       opt_in=True)
    return Outcome.APPLIED


def _unfollow(runtime: Runtime, channel: LineChannel, user_id: str, timestamp: int,
              event_id: str, view: UserView) -> Outcome:
    parked = view.parked_event
    if parked and (events.timestamp_ms(parked), events.event_id(parked)) < (timestamp, event_id):
        runtime.state.unpark(channel.channel_id, user_id)  # they blocked before we could register
    resolved = resolve_customer(runtime, channel, user_id, view.cached_customer)
    if resolved is None:
        log.info("unfollow from a user Capillary does not know; nothing to opt out")
        return Outcome.UNKNOWN_USER
    _sync_subscription(runtime, channel, user_id, resolved.customer_id, resolved.customer,
                       opt_in=False)
    return Outcome.APPLIED


def _sync_subscription(runtime: Runtime, channel: LineChannel, user_id: str, customer_id: int,
                       customer: dict | None, opt_in: bool) -> None:
    """Skip the call when the lookup we just made shows the status is already right."""
    wanted = "OPTIN" if opt_in else "OPTOUT"
    if customer is not None:
        current = subscription_status(customer.get("subscriptions"),
                                      line_subscription(runtime, channel))
        if current == wanted:
            log.info("subscription already %s", wanted, extra={"customer_id": customer_id})
            return
    _set_subscription(runtime, channel, user_id, customer_id, opt_in)


def _set_subscription(runtime: Runtime, channel: LineChannel, user_id: str, customer_id: int,
                      opt_in: bool) -> None:
    reason = "LINE follow" if opt_in else "LINE unfollow"
    try:
        runtime.capillary.set_subscription(customer_id, line_subscription(runtime, channel),
                                           opt_in, reason)
    except NotFoundError:
        # The cached customer was merged away or deleted: resolve again on the next attempt.
        runtime.state.forget_customer(channel.channel_id, user_id)
        raise TransientError(f"customer {customer_id} not found; resolving again") from None
    log.info("subscription set", extra={"customer_id": customer_id,
                                        "subscription": "OPTIN" if opt_in else "OPTOUT"})


def _line_profile(runtime: Runtime, channel: LineChannel, user_id: str) -> dict | None:
    """The display name is a nicety: a LINE API failure must not hold up the registration."""
    try:
        return runtime.line_api.profile(channel, user_id)
    except LinecapError as exc:
        log.warning("LINE profile unavailable; registering without a name",
                    extra={"error": str(exc)})
        return None
