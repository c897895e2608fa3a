"""`linecap backfill-followers`: bring Capillary in line with who follows the account today.

Each current follower becomes a synthetic follow event through the normal task (the bulk
lane), stamped now and with an id fixed per user and day: per-user ordering and dedup apply (a
later real unfollow still wins, and a second run on the same day enqueues nothing new). The
reconciliation (`linecap reconcile`, and the beat's schedule) is this back-fill compared with
what linecap already applied; both publish through tasks.followers.sync.
"""

from __future__ import annotations

import argparse
import time

from cli import context
from cli.output import NOT_OK, CliError, print_fields
from cli.progress import Progress
from cli.validation import positive_int_arg
from config import LineChannel
from core.errors import ConfigurationError, CredentialsError, LinecapError
from core.line import events
from core.store import history
from core.validation import line_user_id_problem
from tasks.followers.sync import backfill_event, bulk_publisher

MAX_PAGE_SIZE = 1000


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "backfill-followers", help="sync every current LINE follower into Capillary",
        description="Page through LINE's followers list (verified or premium accounts only) "
                    "and enqueue a follow event per follower through the normal event task, "
                    "so each is registered if needed and opted in. Safe to run again.")
    parser.add_argument("--channel", metavar="ID", help="channel id (default: the only one)")
    parser.add_argument("--limit", type=positive_int_arg, metavar="N",
                        help="stop after N followers (default: all)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    config = context.settings()
    channel = context.pick_channel(config, args.channel)
    runtime = context.runtime(config)
    counts = {"followers": 0, "enqueued": 0, "already synced today": 0, "malformed ids": 0}
    progress = Progress("followers")
    page_size = min(MAX_PAGE_SIZE, args.limit or MAX_PAGE_SIZE)
    try:
        with context.celery_app(config) as app:
            publish = bulk_publisher(app, channel.channel_id)
            for user_id in runtime.line_api.follower_ids(channel, limit=page_size):
                if args.limit and counts["followers"] >= args.limit:
                    break
                counts["followers"] += 1
                progress.update(counts["followers"])
                if line_user_id_problem(user_id):
                    counts["malformed ids"] += 1
                    continue
                event = backfill_event(channel.channel_id, user_id, int(time.time() * 1000))
                event_id = events.event_id(event)
                if runtime.state.outcome_of(event_id):
                    counts["already synced today"] += 1
                    continue
                queued = history.entry(history.QUEUED, event=event_id, type="follow",
                                       by="linecap backfill-followers",
                                       reason="LINE lists the user as a follower")
                publish(event)
                runtime.history.record(channel.channel_id, user_id, [queued])
                counts["enqueued"] += 1
    except LinecapError as exc:
        progress.close()
        print_fields(list(counts.items()))
        raise _line_error(channel, exc) from None
    progress.close()
    print_fields(list(counts.items()))
    return 0


def _line_error(channel: LineChannel, exc: LinecapError) -> CliError:
    """One line a person can act on; a rerun is safe, so partial progress is not lost."""
    if isinstance(exc, ConfigurationError):
        return CliError(f"LINE refused the followers list of channel {channel.channel_id}: "
                        f"{exc}; only verified or premium accounts can use it")
    if isinstance(exc, CredentialsError):
        return CliError(f"LINE refused the access token of channel {channel.channel_id}: {exc}")
    return CliError(f"LINE followers list of channel {channel.channel_id} failed ({exc}); "
                    "running the command again is safe", NOT_OK)
