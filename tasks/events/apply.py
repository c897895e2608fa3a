"""Apply one LINE event to Capillary exactly once in effect, in per-user timestamp order.

A follow opts the user's customer in, an unfollow opts it out. A user Capillary does not know
is registered first (INSTORE, then LINE) on either: the configuration guide's rule ("If the
user does not exist in the system create an INSTORE and LINE profile") covers opt-outs too, so
every arrival order of a user's events ends in the same state. Without a mobile and with the
`park` strategy, the user's latest event waits for one.

Plain functions over a Runtime (no Celery here), so the same code serves the task, the CLI and
the tests. Returns the Outcome; raises the error classes of core.errors.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from config import LineChannel
from core.errors import LinecapError, MergedAwayError, NotFoundError, TransientError
from core.line import events
from core.store.state import UserView
from tasks.customers import (
    Identity,
    identity_for,
    line_status,
    register_customer,
    resolve_customer,
    write_line_subscription,
)
from tasks.linking.account_link import apply_account_link
from workers.journal import note
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
    with runtime.state.user_lock(channel_id, user_id) as lock:
        # Read under the lock: no other event of this user can change it until we finish.
        view = runtime.state.user_view(events.event_id(event), channel_id, user_id)
        step = begin(runtime, channel, user_id, event, view)
        if not isinstance(step, NeedsRegistration):
            return step
        lock.extend()
        customer_id = register_customer(runtime, channel, user_id, step.identity)
        lock.extend()
        return finish_registered(runtime, channel, user_id, event, view, customer_id)


@dataclass(frozen=True)
class NeedsRegistration:
    """The user is unknown to Capillary: register them with this identity, then finish."""

    identity: Identity


def begin(runtime: Runtime, channel: LineChannel, user_id: str, event: dict[str, Any],
          view: UserView) -> Outcome | NeedsRegistration:
    """Everything before a registration, under the user's lock: dedup, order, a known
    customer's subscription, parking. The back-fill's batches share it (tasks.events.backfill)."""
    event_id, timestamp = events.event_id(event), events.timestamp_ms(event)
    if view.outcome:
        note(f"this event already ended as {view.outcome}")
        return Outcome.DUPLICATE
    if _older_than_known(view, timestamp, event_id):
        runtime.state.mark_event(event_id, Outcome.STALE)
        log.info("older than the user's latest event; skipped")
        _note_stale(view)
        return Outcome.STALE
    opt_in = events.event_type(event) == "follow"
    resolved = resolve_customer(runtime, channel, user_id, view.cached_customer)
    if resolved is None:
        # LINE shows no profile of a user who blocked the account: ask only on a follow.
        profile = _line_profile(runtime, channel, user_id) if opt_in else None
        identity = identity_for(runtime, user_id, profile.get("displayName") if profile else None)
        if identity is None:
            runtime.state.park(channel.channel_id, user_id, event)
            log.info("%s parked until a mobile number is known", events.event_type(event))
            note("no mobile number known for this user (LINECAP_UNKNOWN_USER_STRATEGY=park): "
                 "applied when one arrives (linecap register, import or account linking)")
            return Outcome.PARKED
        return NeedsRegistration(identity)
    wanted = "OPTIN" if opt_in else "OPTOUT"
    if resolved.customer is not None and line_status(runtime, channel,
                                                     resolved.customer) == wanted:
        log.info("subscription already %s", wanted, extra={"customer_id": resolved.customer_id})
        note(f"already {wanted} in Capillary: nothing written", customer=resolved.customer_id)
    else:
        _set_subscription(runtime, channel, user_id, resolved.customer_id, opt_in)
    return _finish(runtime, channel, user_id, event, view)


def finish_registered(runtime: Runtime, channel: LineChannel, user_id: str,
                      event: dict[str, Any], view: UserView, customer_id: int) -> Outcome:
    """After the user was registered: their subscription, and the event recorded."""
    _set_subscription(runtime, channel, user_id, customer_id,
                      events.event_type(event) == "follow")
    return _finish(runtime, channel, user_id, event, view)


def _finish(runtime: Runtime, channel: LineChannel, user_id: str, event: dict[str, Any],
            view: UserView) -> Outcome:
    """The outcome and the user's latest event, written together."""
    if view.parked_event is not None:
        runtime.state.unpark(channel.channel_id, user_id)  # this newer event supersedes it
    new_state = "followed" if events.event_type(event) == "follow" else "unfollowed"
    runtime.state.finish_event(events.event_id(event), Outcome.APPLIED, channel.channel_id,
                               user_id, events.timestamp_ms(event), new_state)
    return Outcome.APPLIED


def _note_stale(view: UserView) -> None:
    if view.record is not None:
        note(f"older than the user's latest applied event ({view.record.state})",
             latest_event=view.record.last_event_id)
    else:
        note("older than the user's parked event",
             latest_event=events.event_id(view.parked_event or {}))


def _older_than_known(view: UserView, timestamp: int, event_id: str) -> bool:
    """Older than the last applied event, or than one parked while waiting for a mobile."""
    if view.record is not None and view.record.is_newer_than(timestamp, event_id):
        return True
    parked = view.parked_event
    return parked is not None and (events.timestamp_ms(parked),
                                   events.event_id(parked)) > (timestamp, event_id)


def _set_subscription(runtime: Runtime, channel: LineChannel, user_id: str, customer_id: int,
                      opt_in: bool) -> None:
    """Write it; a cached customer merged away (8069) or gone is resolved again, once."""
    reason = "LINE follow" if opt_in else "LINE unfollow"
    try:
        write_line_subscription(runtime, channel, customer_id, opt_in, reason)
    except (MergedAwayError, NotFoundError):
        runtime.state.forget_customer(channel.channel_id, user_id)
        resolved = resolve_customer(runtime, channel, user_id)
        if resolved is None or resolved.customer_id == customer_id:
            raise TransientError(f"customer {customer_id} is gone and the LINE user resolves "
                                 "to no other yet; resolving again later") from None
        log.info("customer was merged into another; writing to it",
                 extra={"customer_id": resolved.customer_id, "merged_customer": customer_id})
        customer_id = resolved.customer_id
        write_line_subscription(runtime, channel, customer_id, opt_in, reason)
    log.info("subscription set", extra={"customer_id": customer_id,
                                        "subscription": "OPTIN" if opt_in else "OPTOUT"})
    note(f"set to {'OPTIN' if opt_in else 'OPTOUT'}", customer=customer_id)


def _line_profile(runtime: Runtime, channel: LineChannel, user_id: str) -> dict | None:
    """The display name is a nicety: a LINE API failure must not hold up the registration."""
    try:
        return runtime.line_api.profile(channel, user_id)
    except LinecapError as exc:
        log.warning("LINE profile unavailable; registering without a name",
                    extra={"error": str(exc)})
        return None
