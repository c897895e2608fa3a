"""`linecap reconcile`: one reconciliation pass by hand, the same as the scheduled one.

It reads LINE's follower list, compares it with what linecap last applied per user, queues a
follow (bulk lane) for each follower linecap never applied, and reports the users linecap has
as following whom LINE's list leaves out (drift). It takes the channel's run like a scheduled
pass does, so the two never overlap; `--dry-run` only reads and prints.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from cli import context
from cli.output import NOT_OK, CliError, print_fields, print_json
from config import LineChannel
from core.errors import ConfigurationError, CredentialsError
from core.history_view import when
from core.store.reconciliation import Run
from tasks.followers import runs
from tasks.followers.reconcile import (
    CAME_BACK,
    DRIFT,
    FOLLOWERS,
    IN_SYNC,
    MALFORMED,
    NEVER_APPLIED,
    PARKED,
    REPAIRED,
    Reconciler,
)
from tasks.followers.sync import bulk_publisher
from workers.queue_metrics import queue_depth
from workers.registry import BULK_EVENTS_QUEUE
from workers.runtime import Runtime

SHOWN_USERS = 10
BUSY_WAIT_SECONDS = 1.0
BUSY_TRIES = 30


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "reconcile", help="compare LINE's follower list with linecap and queue what is missing",
        description="One reconciliation pass (what the beat process runs on a schedule): "
                    "followers linecap never applied get a follow through the bulk lane; "
                    "users linecap has as following whom LINE's list leaves out are reported "
                    "as drift (LINE's list leaves out users who have not consented, so they "
                    "are not unfollowed unless asked). Verified or premium accounts only.")
    parser.add_argument("--channel", metavar="ID", help="one channel (default: every one)")
    parser.add_argument("--dry-run", action="store_true",
                        help="compare and print; queue nothing, change nothing")
    parser.add_argument("--repair-missing", action="store_true",
                        help="queue an unfollow for each drifted user "
                             "(LINECAP_RECONCILE_REPAIR_MISSING=1 makes it the default)")
    parser.add_argument("--last", action="store_true",
                        help="show each channel's last run and the run in progress; run nothing")
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    config = context.settings()
    channels = [context.pick_channel(config, args.channel)] if args.channel \
        else list(config.channels)
    runtime = context.runtime(config)
    if args.last:
        return _show_last(runtime, channels, args.json)
    repair = args.repair_missing or config.reconcile_repair_missing
    results = []
    with context.celery_app(config) as app:
        for channel in channels:
            if args.dry_run:
                summary = dry_run(runtime, channel, repair)
            else:
                reconciler = Reconciler(
                    runtime, channel, bulk_publisher(app, channel.channel_id),
                    backlog=lambda: queue_depth(runtime.redis, BULK_EVENTS_QUEUE))
                summary = by_hand(runtime, reconciler, repair)
            results.append(summary)
            if not args.json:
                print_summary(channel, summary, dry=args.dry_run)
    if args.json:
        print_json(results if len(results) > 1 else results[0])
    return 0 if all(r.get("status") == "completed" for r in results) else NOT_OK


def dry_run(runtime: Runtime, channel: LineChannel, repair: bool) -> dict[str, Any]:
    """The whole pass in this process, remembering nothing anywhere."""
    reconciler = Reconciler(runtime, channel, publish=None)
    run_ = Run.new(channel.channel_id, "cli", repair)
    try:
        while not reconciler.advance(run_).done:
            pass
    except (ConfigurationError, CredentialsError) as exc:
        return run_.summary("refused", f"LINE refused the follower list: {exc}")
    return run_.summary("completed")


def by_hand(runtime: Runtime, reconciler: Reconciler, repair: bool) -> dict[str, Any]:
    """Start the channel's run (or take over one that stopped) and step it to its end here,
    waiting when the bulk lane is busy."""
    channel_id = reconciler.channel.channel_id
    result = _first_step(runtime, reconciler, repair)
    while result.run is not None and result.status in (runs.CONTINUED, runs.PAUSED):
        run_ = result.run
        if result.status == runs.PAUSED and run_.paused_until:
            _waiting(run_)
            time.sleep(max(run_.paused_until - time.time(), 0))
        result = runs.advance(runtime, reconciler,
                              step={"run": run_.run_id, "slice": run_.slice})
    if result.summary is not None:
        return result.summary
    if result.status == runs.SUPERSEDED:  # a worker took the run over: wait for its end
        return _wait_for_end(runtime, channel_id)
    raise CliError(f"a reconciliation of channel {channel_id} is in progress"
                   f"{_describe_running(result.run)}; `linecap reconcile --last` shows it",
                   NOT_OK)


def _first_step(runtime: Runtime, reconciler: Reconciler, repair: bool) -> runs.Advanced:
    for _ in range(BUSY_TRIES):
        result = runs.advance(runtime, reconciler, interval=0, by="cli", repair=repair)
        if result.status != runs.BUSY:
            return result
        time.sleep(BUSY_WAIT_SECONDS)
    return result


def _wait_for_end(runtime: Runtime, channel_id: str) -> dict[str, Any]:
    store = runs.store_for(runtime)
    while store.current(channel_id) is not None:
        time.sleep(BUSY_WAIT_SECONDS)
    return store.last(channel_id) or {"status": "unknown", "channel_id": channel_id}


def _waiting(run_: Run) -> None:
    print(f"linecap: the bulk lane is busy; run {run_.run_id} goes on at "
          f"{when((run_.paused_until or 0) * 1000)}", file=sys.stderr)


def _describe_running(run_: Run | None) -> str:
    if run_ is None:
        return ""
    return (f" (run {run_.run_id} by {run_.by}, started {when(run_.started_at * 1000)}, "
            f"{run_.counts.get(FOLLOWERS, 0)} followers read)")


def _show_last(runtime: Runtime, channels: list[LineChannel], as_json: bool) -> int:
    store = runs.store_for(runtime)
    views = [{"channel_id": channel.channel_id,
              **store.view(channel.channel_id,
                           runtime.settings.reconcile_interval(channel.channel_id))}
             for channel in channels]
    if as_json:
        print_json(views)
        return 0
    for channel, view in zip(channels, views, strict=True):
        if view["running"]:
            print(f"channel {channel.channel_id}: in progress"
                  f"{_describe_running(Run.from_json(view['running']))}")
        if view["last"]:
            print_summary(channel, view["last"], dry=False)
        elif not view["running"]:
            print(f"channel {channel.channel_id}: no reconciliation yet")
    return 0


def print_summary(channel: LineChannel, summary: dict[str, Any], dry: bool) -> None:
    counts = summary.get("counts") or {}
    queue = "would queue" if dry else "queued"
    status = summary.get("status")
    seconds = (summary.get("finished_at") or 0) - (summary.get("started_at") or 0)
    print(f"channel {channel.channel_id} ({channel.name}): {status}"
          f"{' (dry run)' if dry else ''}, run {summary.get('run_id')}, "
          f"started {when((summary.get('started_at') or 0) * 1000)}, {seconds:.1f} s")
    if summary.get("message"):
        print(f"  {summary['message']}")
    if status != "completed":
        return
    rows = [
        ("followers LINE lists", counts.get(FOLLOWERS, 0)),
        ("in sync", counts.get(IN_SYNC, 0)),
        (f"{queue}: never applied", counts.get(NEVER_APPLIED, 0)),
        (f"{queue}: came back (linecap had an unfollow)", counts.get(CAME_BACK, 0)),
        ("parked (waiting for a mobile)", counts.get(PARKED, 0)),
        ("malformed ids", counts.get(MALFORMED, 0)),
        ("drift: following in linecap, not in LINE's list", counts.get(DRIFT, 0)),
    ]
    if summary.get("repair"):
        rows.append((f"{queue}: unfollows for the drift", counts.get(REPAIRED, 0)))
    if summary.get("restarts"):
        rows.append(("list read again (LINE's cursor expired)", summary["restarts"]))
    print_fields([(f"  {label}", value) for label, value in rows])
    for label, users in ((queue, summary.get("queued_sample") or []),
                         ("drift", summary.get("drift_sample") or [])):
        if users:
            more = f" (+{len(users) - SHOWN_USERS} more in --json)" \
                if len(users) > SHOWN_USERS else ""
            print(f"  {label}: {', '.join(users[:SHOWN_USERS])}{more}")
    if counts.get(DRIFT) and not summary.get("repair"):
        print("  drift is reported, not unfollowed (LINE's list leaves out users who have not "
              "consented); `linecap history --line-user U…` shows one user's story")
