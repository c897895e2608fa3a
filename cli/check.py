"""`linecap check`: what Member Care would show for a LINE user or a mobile number.

Complete means the guide's final check passes: an INSTORE and a LINE profile (for this
channel's source account) on one customer, confirmed by looking up each source separately.
When the LINE subscription is not OPTIN, the user's history says why ("not opted in because:
unfollow 01H… applied at …") and `linecap history` tells the rest.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

from cli import context, history
from cli.output import NOT_OK, print_fields, print_json
from cli.validation import line_user_id_arg, mobile_arg
from config import LineChannel
from core.capillary.client import subscription_status
from core.capillary.documents import identifier_value, source_profile
from tasks.customers import line_subscription, lookup_line_customer
from workers.runtime import Runtime

INSTORE_KEYS = ("mobile", "email", "externalId")


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "check", help="show a customer's INSTORE/LINE mapping and LINE subscription",
        description="Look a person up in Capillary by LINE user id or mobile and show their "
                    "customer id, INSTORE and LINE profiles and LINE subscription. Exit code 0 "
                    "only when INSTORE and LINE profiles are on one customer, 1 otherwise.")
    who = parser.add_mutually_exclusive_group(required=True)
    who.add_argument("--line-user", type=line_user_id_arg, metavar="U…",
                     help="LINE user id (U + 32 lowercase hex)")
    who.add_argument("--mobile", type=mobile_arg, help="mobile number of the INSTORE profile")
    parser.add_argument("--channel", metavar="ID", help="channel id (default: the only one)")
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")
    parser.set_defaults(handler=run)


@dataclass(frozen=True)
class MemberView:
    """One customer as seen from one source, checked against a lookup in the other source."""

    customer_id: int | None
    instore: dict[str, Any] | None
    line: dict[str, Any] | None
    other_source_customer_id: int | None
    subscription: str | None

    @property
    def same_customer(self) -> bool:
        return self.customer_id is not None and self.other_source_customer_id == self.customer_id

    @property
    def complete(self) -> bool:
        return self.instore is not None and self.line is not None and self.same_customer

    def to_json(self) -> dict[str, Any]:
        return {"customer_id": self.customer_id, "instore_profile": self.instore,
                "line_profile": self.line, "same_customer": self.same_customer,
                "line_subscription": self.subscription, "complete": self.complete}


def run(args: argparse.Namespace) -> int:
    config = context.settings()
    channel = context.pick_channel(config, args.channel)
    runtime = context.runtime(config)
    view = by_line_user(runtime, channel, args.line_user) if args.line_user else \
        by_mobile(runtime, channel, args.mobile)
    user_id = args.line_user or identifier_value(view.line, config.lookup_identifier_name)
    why = None
    if user_id and view.subscription != "OPTIN":
        why = history.read(config, channel.channel_id, user_id).explanation()
    if args.json:
        print_json({**view.to_json(), "line_user_id": user_id, "why": why})
    else:
        extra = [("why", why), ("history", f"linecap history --line-user {user_id} "
                                           f"--channel {channel.channel_id}")] if why else []
        print_view(view, extra)
    return 0 if view.complete else NOT_OK


def by_line_user(runtime: Runtime, channel: LineChannel, user_id: str) -> MemberView:
    customer = _every_source(runtime, lookup_line_customer(runtime, channel, user_id))
    other = None
    key = _instore_key(source_profile(customer, "INSTORE"))
    if key is not None:
        other = runtime.capillary.lookup("INSTORE", *key)
    return _view(runtime, channel, customer, other)


def by_mobile(runtime: Runtime, channel: LineChannel, mobile: str) -> MemberView:
    customer = _every_source(runtime, runtime.capillary.lookup("INSTORE", "mobile", mobile))
    line = source_profile(customer, "LINE", channel.source_account_id)
    other = None
    line_id = identifier_value(line, runtime.settings.lookup_identifier_name)
    if line_id is not None:
        other = lookup_line_customer(runtime, channel, line_id)
    return _view(runtime, channel, customer, other)


def _every_source(runtime: Runtime, found: dict[str, Any] | None) -> dict[str, Any] | None:
    """A lookup shows the profiles of the source it searched; Member Care shows them all."""
    if found is None:
        return None
    return runtime.capillary.customer(int(found["id"]), "ALL") or found


def print_view(view: MemberView, extra: list[tuple[str, Any]] | None = None) -> None:
    print_fields([
        ("customer", view.customer_id if view.customer_id is not None else "not found"),
        ("INSTORE profile", describe_profile(view.instore)),
        ("LINE profile", describe_profile(view.line)),
        ("same customer", "yes" if view.same_customer else "no"),
        ("LINE subscription", view.subscription or "not recorded"),
        ("mapping", "complete" if view.complete else "INCOMPLETE"),
        *(extra or []),
    ])


def describe_profile(profile: dict[str, Any] | None) -> str:
    if profile is None:
        return "missing"
    idents = ", ".join(f"{i.get('type')} {i.get('value')}" for i in profile.get("identifiers", []))
    account = f" (account {profile['accountId']})" if profile.get("accountId") else ""
    return (idents or "no identifiers") + account


def _view(runtime: Runtime, channel: LineChannel, customer: dict[str, Any] | None,
          other: dict[str, Any] | None) -> MemberView:
    # The subscription list by id names accounts; a lookup's embedded one does not.
    status = subscription_status(runtime.capillary.get_subscriptions(int(customer["id"])),
                                 line_subscription(runtime, channel)) if customer else None
    return MemberView(
        customer_id=int(customer["id"]) if customer else None,
        instore=source_profile(customer, "INSTORE"),
        line=source_profile(customer, "LINE", channel.source_account_id),
        other_source_customer_id=int(other["id"]) if other else None,
        subscription=status,
    )


def _instore_key(profile: dict[str, Any] | None) -> tuple[str, str] | None:
    """The INSTORE identifier to look the customer up by, in the org's usual order."""
    for name in INSTORE_KEYS:
        value = identifier_value(profile, name)
        if value is not None:
            return name, value
    return None
