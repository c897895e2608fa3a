"""A reconciliation pass: a back-fill that also compares LINE's follower list with what
linecap last applied for each user.

Two phases, each advanced in bounded steps so that a run can stop anywhere and resume:

1. **followers** — page LINE's list (`next` is valid 24 hours). A listed user whose latest
   applied event is a follow is in sync, and their record notes that this run saw them. A
   listed user linecap never applied (or whose latest is an unfollow: they came back without
   a webhook) gets a follow through the bulk lane, stamped with the time the page was read.
   A user whose follow is parked for want of a mobile is left to it.
2. **drift** — scan linecap's order records of the channel: a user it has as following, whom
   this run did not see and whose record is older than the run, is missing from LINE's list.
   That is **reported**, not undone: the list leaves out users who have not consented (and
   LINE documents no way to tell them apart), so absence is no unfollow. Only with the
   operator's opt-in (`repair`) does each get an unfollow.

A dry run reads and compares the same way and changes nothing: it queues nothing, writes no
history and remembers whom it saw in memory instead of on the records.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from config import LineChannel
from core.errors import InvalidInputError
from core.store import history
from core.store.reconciliation import Run
from core.store.state import UserRecord
from core.validation import is_line_user_id
from tasks.followers.sync import Publish, reconcile_event
from workers.runtime import Runtime

log = logging.getLogger("linecap.reconcile")

PAGE_SIZE = 1000  # LINE's largest page
SCAN_COUNT = 1000
# Bulk-lane messages waiting before a run pauses: the run goes as fast as the bulk lane's
# share of Capillary's budget drains them, and never floods the broker.
MAX_BULK_BACKLOG = 2 * PAGE_SIZE
BACKLOG_PAUSE_SECONDS = 30.0
STEP_SECONDS = 30.0  # one step (a task run) stops after this long, between two pages
# LINE's cursor lives 24 hours; a run that paused longer starts its paging over.
CURSOR_LIFETIME_SECONDS = 23 * 3600
MAX_RESTARTS = 3  # a list that cannot be read to its end this often ends the run

# Counts in a run's summary.
FOLLOWERS = "followers"  # listed by LINE
IN_SYNC = "in_sync"
NEVER_APPLIED = "never_applied"  # queued: no event of theirs applied
CAME_BACK = "unfollowed_in_linecap"  # queued: linecap's latest is an unfollow
PARKED = "parked"
MALFORMED = "malformed"
DRIFT = "drift"  # linecap has them following, LINE's list leaves them out
REPAIRED = "repaired"  # unfollows queued for the drift (opt-in)


@dataclass(frozen=True)
class Step:
    done: bool
    pause: float = 0.0  # seconds to wait before the next step (the bulk lane is busy)


class Reconciler:
    """Advances one channel's runs; `publish` None makes it a dry run."""

    def __init__(self, runtime: Runtime, channel: LineChannel, publish: Publish | None,
                 backlog: Callable[[], int] = lambda: 0,
                 step_seconds: float = STEP_SECONDS) -> None:
        self.runtime = runtime
        self.channel = channel
        self.publish = publish
        self.backlog = backlog
        self.step_seconds = step_seconds
        self._seen_in_memory: set[str] = set()

    @property
    def dry(self) -> bool:
        return self.publish is None

    def advance(self, run: Run) -> Step:
        """Pages, then the drift scan, until the run is done, `step_seconds` have passed or
        the bulk lane is too busy. LINE's and Redis's errors propagate (the run stays as
        saved)."""
        deadline = time.monotonic() + self.step_seconds
        while True:
            if run.phase == "followers":
                if not self.dry and self.backlog() >= MAX_BULK_BACKLOG:
                    return Step(False, BACKLOG_PAUSE_SECONDS)
                self._page(run)
            else:
                self._drift(run)
                if run.phase == "done":
                    return Step(True)
            if time.monotonic() >= deadline:
                return Step(False)

    # -- phase 1: LINE's followers ---------------------------------------------------------
    def _page(self, run: Run) -> None:
        now = time.time()
        if run.cursor and run.cursor_at and now - run.cursor_at > CURSOR_LIFETIME_SECONDS:
            self._start_over(run, "the run paused longer than LINE keeps its cursor")
            return
        try:
            ids, following = self.runtime.line_api.follower_page(self.channel, run.cursor,
                                                                 PAGE_SIZE)
        except InvalidInputError:
            if not run.cursor:
                raise
            self._start_over(run, "LINE refused the run's cursor (expired)")
            return
        listed_at_ms = int(now * 1000)
        users = [u for u in ids if is_line_user_id(u)]
        run.count(MALFORMED, len(ids) - len(users))
        run.count(FOLLOWERS, len(users))
        state = self.runtime.state
        seen: list[str] = []
        queue: list[tuple[str, UserRecord | None]] = []
        for user, (record, parked) in zip(users, state.user_records(self.channel.channel_id,
                                                                     users), strict=True):
            if record is not None and record.state == "followed":
                seen.append(user)
            elif parked:
                run.count(PARKED)
            else:
                queue.append((user, record))
        run.count(IN_SYNC, len(seen))
        if self.dry:
            self._seen_in_memory.update(seen)
        elif seen:
            state.mark_seen(self.channel.channel_id, seen, run.run_id)
        self._queue_follows(run, queue, listed_at_ms)
        run.cursor, run.cursor_at = following, now if following else None
        if following is None:
            run.phase, run.scan_cursor = "drift", 0

    def _start_over(self, run: Run, why: str) -> None:
        """Page again from the first page; what the pages counted is counted again."""
        if run.restarts >= MAX_RESTARTS:
            raise InvalidInputError(f"LINE's follower list could not be read to its end "
                                    f"({run.restarts} starts over; last: {why})")
        log.warning("reconciliation reads LINE's follower list again from the start: %s", why,
                    extra={"channel": self.channel.channel_id, "run": run.run_id})
        run.cursor, run.cursor_at = None, None
        run.counts, run.queued_sample = {}, []
        run.restarts += 1

    def _queue_follows(self, run: Run, queue: list[tuple[str, UserRecord | None]],
                       listed_at_ms: int) -> None:
        run.sample(run.queued_sample, [user for user, _ in queue])
        entries = []
        for user, record in queue:
            run.count(NEVER_APPLIED if record is None else CAME_BACK)
            event = reconcile_event("follow", run.run_id, user, listed_at_ms)
            if self.publish is None:
                continue
            reason = ("LINE lists the user as a follower; linecap has applied no event of "
                      "theirs" if record is None else
                      "LINE lists the user as a follower; linecap's latest applied event "
                      "for them is an unfollow")
            # Stamped before the message exists: it sorts before what the task records.
            entries.append((self.channel.channel_id, user, [history.entry(
                history.QUEUED, event=event["webhookEventId"], type="follow",
                by=f"reconciliation {run.run_id}", reason=reason,
                latest_event=record.last_event_id if record else None)]))
            self.publish(event)
        self.runtime.history.record_many(entries)

    # -- phase 2: linecap's followed users that LINE does not list ------------------------
    def _drift(self, run: Run) -> None:
        cursor, found = self.runtime.state.scan_user_records(
            self.channel.channel_id, run.scan_cursor, SCAN_COUNT)
        missing = [(user, record) for user, record, seen in found
                   if record.state == "followed" and record.applied_at < run.started_at
                   and not self._was_seen(run, user, seen)]
        run.count(DRIFT, len(missing))
        run.sample(run.drift_sample, [user for user, _ in missing])
        if missing and not self.dry:
            self._report_drift(run, missing)
        run.scan_cursor = cursor
        if cursor == 0:
            run.phase = "done"

    def _was_seen(self, run: Run, user: str, seen_by: str) -> bool:
        return user in self._seen_in_memory if self.dry else seen_by == run.run_id

    def _report_drift(self, run: Run, missing: list[tuple[str, UserRecord]]) -> None:
        started_ms = int(run.started_at * 1000)
        entries = []
        for user, record in missing:
            steps = [history.entry(
                history.DRIFT, run=run.run_id, latest_event=record.last_event_id,
                reason="linecap has the user following, but LINE's follower list leaves them "
                       "out (not consented, or blocked without an unfollow webhook)")]
            if run.repair and self.publish is not None:
                event = reconcile_event("unfollow", run.run_id, user, started_ms)
                steps.append(history.entry(
                    history.QUEUED, event=event["webhookEventId"], type="unfollow",
                    by=f"reconciliation {run.run_id}",
                    reason="repairing drift (LINECAP_RECONCILE_REPAIR_MISSING)"))
                self.publish(event)
                run.count(REPAIRED)
            entries.append((self.channel.channel_id, user, steps))
        self.runtime.history.record_many(entries)
