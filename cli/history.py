"""`linecap history`: one LINE user's story in linecap, oldest first.

What arrived (webhook event id, type, LINE's timestamp, whether LINE redelivered it), each run
of it and how it ended (applied, duplicate, stale, parked, retried, dead-lettered, with the
reason), the Capillary calls each run made, replays, and what the reconciliation found.
"""

from __future__ import annotations

import argparse

from cli import context
from cli.output import NOT_OK, print_fields, print_json, print_table
from cli.validation import line_user_id_arg
from config import Settings
from core.history_view import UserHistory, describe, subject, when
from core.store.history import HistoryStore
from core.store.state import StateStore


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "history", help="what linecap received and did for one LINE user",
        description="Show a LINE user's history in a channel: events received, how each run "
                    "ended and why, the Capillary calls made, replays and reconciliation "
                    "findings. Kept LINECAP_HISTORY_TTL_SECONDS (30 days) after the last "
                    "entry, at most LINECAP_HISTORY_MAX_ENTRIES entries. Exit code 1 when "
                    "there is none.")
    parser.add_argument("--line-user", type=line_user_id_arg, required=True, metavar="U…",
                        help="LINE user id (U + 32 lowercase hex)")
    parser.add_argument("--channel", metavar="ID", help="channel id (default: the only one)")
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")
    parser.set_defaults(handler=run)


def read(config: Settings, channel_id: str, user_id: str) -> UserHistory:
    client = context.connect_redis(config)
    return UserHistory.read(HistoryStore.from_settings(client, config),
                            StateStore.from_settings(client, config), channel_id, user_id)


def run(args: argparse.Namespace) -> int:
    config = context.settings()
    channel = context.pick_channel(config, args.channel)
    view = read(config, channel.channel_id, args.line_user)
    if args.json:
        print_json(view.to_json())
    else:
        print_fields([("channel", f"{channel.channel_id} ({channel.name})"),
                      ("LINE user", view.user_id),
                      ("linecap state", view.state_line()),
                      ("why", view.explanation()),
                      ("kept", view.kept)])
        if view.entries:
            print()
            print_table(("TIME", "EVENT", "STEP"),
                        [(when(e["at"]), subject(e), describe(e)) for e in view.entries])
    return 0 if view.entries else NOT_OK
