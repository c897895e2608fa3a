"""`linecap backfill-followers`: bring Capillary in line with who follows the account today.

Each current follower becomes a follow stamped now, with an id fixed per user and day, sent in
batches to the bulk lane (tasks.events.backfill): per-user ordering and dedup apply (a later
real unfollow still wins, and a second run on the same day enqueues nothing new), unknown
followers are registered with Capillary's batch API, and live events keep their share of the
budget.
"""

from __future__ import annotations

import argparse
import itertools
import time
from collections.abc import Iterable, Iterator

from cli import context
from cli.output import NOT_OK, CliError, print_fields
from cli.progress import Progress
from cli.validation import positive_int_arg
from config import LineChannel
from core.errors import ConfigurationError, CredentialsError, LinecapError
from tasks.events.backfill import Queued, queue_followers

MAX_PAGE_SIZE = 1000


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "backfill-followers", help="sync every current LINE follower into Capillary",
        description="Page through LINE's followers list (verified or premium accounts only) "
                    "and enqueue a follow per follower, in batches on the bulk lane, so each is "
                    "registered if needed and opted in. Safe to run again.")
    parser.add_argument("--channel", metavar="ID", help="channel id (default: the only one)")
    parser.add_argument("--limit", type=positive_int_arg, metavar="N",
                        help="stop after N followers (default: all)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    config = context.settings()
    channel = context.pick_channel(config, args.channel)
    runtime = context.runtime(config)
    queued = Queued()
    progress = Progress("followers")
    page_size = min(MAX_PAGE_SIZE, args.limit or MAX_PAGE_SIZE)
    followers = runtime.line_api.follower_ids(channel, limit=page_size)
    if args.limit:
        followers = itertools.islice(followers, args.limit)
    try:
        with context.celery_app(config) as app:
            queue_followers(runtime, app, channel, _counted(followers, progress),
                            int(time.time() * 1000), queued)
    except LinecapError as exc:
        progress.close()
        print_fields(list(queued.counts.items()))
        raise _line_error(channel, exc) from None
    progress.close()
    print_fields(list(queued.counts.items()))
    return 0


def _counted(user_ids: Iterable[str], progress: Progress) -> Iterator[str]:
    for count, user_id in enumerate(user_ids, 1):
        progress.update(count)
        yield user_id


def _line_error(channel: LineChannel, exc: LinecapError) -> CliError:
    """One line a person can act on; a rerun is safe, so partial progress is not lost."""
    if isinstance(exc, ConfigurationError):
        return CliError(f"LINE refused the followers list of channel {channel.channel_id}: "
                        f"{exc}; only verified or premium accounts can use it")
    if isinstance(exc, CredentialsError):
        return CliError(f"LINE refused the access token of channel {channel.channel_id}: {exc}")
    return CliError(f"LINE followers list of channel {channel.channel_id} failed ({exc}); "
                    "running the command again is safe", NOT_OK)
