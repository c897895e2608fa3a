"""`linecap dlq`: look at, replay and purge dead letters (events and rows that failed for good).

Replay publishes first and removes the entry second (`workers.replay`), so an entry is never
lost; running it twice is harmless because the tasks skip work already done.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from cli import context
from cli.output import NOT_OK, CliError, print_json, print_table
from cli.validation import positive_int_arg
from core.store.dead_letters import DeadLetter, DeadLetterStore
from core.store.history import HistoryStore
from workers.replay import replay_all, replay_one

ERROR_WIDTH = 60
REPLAYED_BY = "linecap dlq replay"


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "dlq", help="list, show, replay or purge dead letters",
        description="Dead letters are events (and import rows) that failed for good or ran out "
                    "of retries; each keeps its payload, error and attempt count.")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    listing = actions.add_parser("list", help="newest failures first",
                                 description="List dead letters, newest failure first.")
    listing.add_argument("--limit", type=positive_int_arg, default=50, metavar="N",
                         help="show at most N entries (default: %(default)s)")
    listing.add_argument("--json", action="store_true", help="print JSON for scripts")
    listing.set_defaults(handler=run_list)

    show = actions.add_parser("show", help="one entry in full (JSON)",
                              description="Print one dead letter in full, as JSON.")
    show.add_argument("id", help="the entry's id (webhookEventId or import task id)")
    show.set_defaults(handler=run_show)

    replay = actions.add_parser(
        "replay", help="send entries back to their task",
        description="Publish the entry to its task again (same task id), then remove it.")
    _id_or_all(replay)
    replay.set_defaults(handler=run_replay)

    purge = actions.add_parser("purge", help="delete entries for good",
                               description="Delete dead letters without replaying them.")
    _id_or_all(purge)
    purge.add_argument("--yes", action="store_true", help="confirm: the entries are deleted")
    purge.set_defaults(handler=run_purge)


def _id_or_all(parser: argparse.ArgumentParser) -> None:
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("id", nargs="?", help="the entry's id")
    target.add_argument("--all", action="store_true", help="every entry")


def store() -> DeadLetterStore:
    config = context.settings()
    return DeadLetterStore(context.connect_redis(config), config.dead_letter_ttl_seconds)


def run_list(args: argparse.Namespace) -> int:
    dead = store()
    letters = dead.list(limit=args.limit)
    if args.json:
        print_json([letter.to_json() for letter in letters])
        return 0
    if not letters:
        print("no dead letters")
        return 0
    print_table(("ID", "TASK", "CHANNEL", "ERROR CLASS", "ATTEMPTS", "LAST FAILURE", "ERROR"),
                [_row(letter) for letter in letters])
    total = dead.count()
    if total > len(letters):
        print(f"\n{len(letters)} of {total} shown (--limit)")
    return 0


def run_show(args: argparse.Namespace) -> int:
    letter = store().get(args.id)
    if letter is None:
        raise CliError(f"no dead letter with id {args.id}", NOT_OK)
    print_json(letter.to_json())
    return 0


def run_replay(args: argparse.Namespace) -> int:
    config = context.settings()
    client = context.connect_redis(config)
    dead = DeadLetterStore(client, config.dead_letter_ttl_seconds)
    journal = HistoryStore.from_settings(client, config)
    with context.celery_app(config) as app:
        if args.all:
            print(f"replayed {replay_all(dead, app, journal, REPLAYED_BY)}")
            return 0
        if not replay_one(dead, app, args.id, journal, REPLAYED_BY):
            raise CliError(f"no dead letter with id {args.id}", NOT_OK)
    print(f"replayed {args.id}")
    return 0


def run_purge(args: argparse.Namespace) -> int:
    if not args.yes:
        raise CliError("purge deletes dead letters without replaying them; add --yes to confirm")
    dead = store()
    if args.all:
        print(f"purged {dead.purge()}")
        return 0
    if not dead.purge(args.id):
        raise CliError(f"no dead letter with id {args.id}", NOT_OK)
    print(f"purged {args.id}")
    return 0


def _row(letter: DeadLetter) -> tuple:
    when = datetime.fromtimestamp(letter.last_failure_at, UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    error = letter.error if len(letter.error) <= ERROR_WIDTH else letter.error[:ERROR_WIDTH] + "…"
    return (letter.event_id, letter.task, letter.channel_id, letter.error_class, letter.attempts,
            when, error)
