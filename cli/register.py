"""`linecap register`: the configuration guide's manual registration, done the safe way.

Remember the mobile for the LINE user, register INSTORE then LINE with that mobile, check by
lookups that both profiles are one customer, then let an event parked for this user go on.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import TypeVar

from cli import context
from cli.output import NOT_OK, CliError, print_fields
from cli.validation import line_user_id_arg, mobile_arg, name_arg
from config import LineChannel, Settings
from core.errors import ComeBackLater, IdentityConflictError
from core.line import events
from tasks.customers import Identity, lookup_line_customer, register_known_mobile
from workers.messages import send
from workers.outcomes import Outcome
from workers.registry import PROCESS_EVENT_TASK
from workers.runtime import Runtime

LOCK_WAIT_SECONDS = 15.0
T = TypeVar("T")


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "register", help="register a LINE user with their mobile (INSTORE, then LINE)",
        description="Register the person behind a LINE user id with their mobile number: "
                    "INSTORE profile first, then the LINE profile with the same mobile, then "
                    "check both are one customer. An event parked for this user is sent on. "
                    "Exit code 0 only when both profiles are on one customer.")
    parser.add_argument("--mobile", required=True, type=mobile_arg,
                        help="mobile number, 8-15 digits, optional leading +")
    parser.add_argument("--line-user", required=True, type=line_user_id_arg, metavar="U…",
                        help="LINE user id (U + 32 lowercase hex)")
    parser.add_argument("--channel", metavar="ID", help="channel id (default: the only one)")
    parser.add_argument("--name", type=name_arg, help="first name for the new profiles")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    config = context.settings()
    channel = context.pick_channel(config, args.channel)
    runtime = context.runtime(config)
    runtime.state.remember_identity(args.line_user, args.mobile, args.name)
    identity = Identity("mobile", args.mobile, args.name)

    def register() -> str:
        return register_known_mobile(runtime, channel, args.line_user, identity)

    try:
        outcome = _with_user_lock(runtime, channel, args.line_user, register)
    except IdentityConflictError as exc:
        raise CliError(str(exc), NOT_OK) from None
    instore = runtime.capillary.lookup("INSTORE", "mobile", args.mobile)
    line = lookup_line_customer(runtime, channel, args.line_user)
    instore_id = int(instore["id"]) if instore else None
    line_id = int(line["id"]) if line else None
    one_customer = instore_id is not None and instore_id == line_id
    fields = [("customer", line_id if one_customer else "-"),
              ("registration", "new" if outcome == Outcome.REGISTERED else "already registered"),
              ("INSTORE profile", _found(instore_id)), ("LINE profile", _found(line_id)),
              ("same customer", "yes" if one_customer else "NO")]
    if one_customer:
        fields.append(("parked event", release_parked_event(runtime, config, channel,
                                                              args.line_user)))
    print_fields(fields)
    return 0 if one_customer else NOT_OK


def release_parked_event(runtime: Runtime, config: Settings, channel: LineChannel,
                          user_id: str) -> str:
    """Send a follow or unfollow parked for want of a mobile back through the normal task; say
    what we did.

    Taken out of the parked set first and put back if publishing fails, so it is never lost.
    """
    event = runtime.state.unpark(channel.channel_id, user_id)
    if event is None:
        return "none waiting"
    event_id = events.event_id(event)
    try:
        with context.celery_app(config) as app:
            send(app, PROCESS_EVENT_TASK, {"channel_id": channel.channel_id, "event": event},
                 event_id)
    except Exception:
        runtime.state.park(channel.channel_id, user_id, event)
        raise
    return f"re-enqueued (webhookEventId {event_id})"


def _with_user_lock(runtime: Runtime, channel: LineChannel, user_id: str,
                    work: Callable[[], T]) -> T:
    """Run under the user's lock, waiting a little if a worker is applying their event now."""
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    while True:
        try:
            with runtime.state.user_lock(channel.channel_id, user_id):
                return work()
        except ComeBackLater as busy:
            if time.monotonic() + busy.wait_seconds > deadline:
                raise CliError(f"{busy}; try again in a minute", NOT_OK) from None
            time.sleep(busy.wait_seconds)


def _found(customer_id: int | None) -> str:
    return f"customer {customer_id}" if customer_id is not None else "not found"
