"""Back-filling followers: each becomes a follow stamped now, with an id fixed per user and day,
through the same steps as a webhook's (dedup, per-user order, a known customer's
subscription, parking); the unknown ones of a batch are registered together with Capillary's
batch API (tasks.batch_registration) instead of two calls each.

Followers are sent to the bulk lane in batches, so a back-fill uses only what the live reserve
leaves of Capillary's budget and a live follow never waits behind it.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

from celery import Celery, current_app

from config import LineChannel
from core.errors import ComeBackLater, LinecapError, PermanentError, TransientError
from core.line import events
from core.store import history
from core.store.rate_budget import BULK
from core.validation import is_line_user_id
from tasks.batch_registration import Person, Registered, register_people
from tasks.events.apply import NeedsRegistration, begin, finish_registered
from tasks.followers.sync import backfill_event, bulk_publisher
from workers.failure_policy import Attempts, Job, dead_letter
from workers.messages import send
from workers.outcomes import Outcome
from workers.registry import BACKFILL_TASK, PROCESS_EVENT_TASK
from workers.runtime import Runtime

log = logging.getLogger("linecap.backfill")

Publish = Callable[[str, dict[str, Any]], None]


@dataclass
class Queued:
    """What queue_followers did with the followers it was given."""

    counts: dict[str, int] = field(default_factory=lambda: {
        "followers": 0, "enqueued": 0, "already synced today": 0, "already following": 0,
        "malformed ids": 0})


def queue_followers(runtime: Runtime, celery_app: Celery, channel: LineChannel,
                    user_ids: Iterable[str], now_ms: int, queued: Queued | None = None,
                    ) -> Queued:
    """Send the followers that need it to the bulk lane, a batch per message. Skipped: ids
    that are not LINE ids, followers already synced today, and followers whose latest applied
    event linecap knows is a follow (opted in already: no call needed)."""
    queued = queued or Queued()
    batch: list[str] = []
    for user_id in user_ids:
        queued.counts["followers"] += 1
        if not is_line_user_id(user_id):
            queued.counts["malformed ids"] += 1
            continue
        if runtime.state.outcome_of(events.event_id(backfill_event(channel.channel_id, user_id,
                                                                   now_ms))):
            queued.counts["already synced today"] += 1
            continue
        record = runtime.state.user_record(channel.channel_id, user_id)
        if record is not None and record.state == "followed":
            queued.counts["already following"] += 1
            continue
        batch.append(user_id)
        if len(batch) >= runtime.settings.batch_size:
            _send_batch(runtime, celery_app, channel.channel_id, batch, now_ms)
            queued.counts["enqueued"] += len(batch)
            batch = []
    if batch:
        _send_batch(runtime, celery_app, channel.channel_id, batch, now_ms)
        queued.counts["enqueued"] += len(batch)
    return queued


def _send_batch(runtime: Runtime, celery_app: Celery, channel_id: str, users: list[str],
                now_ms: int) -> None:
    """One message for the batch, and a "queued" entry in each follower's history."""
    digest = hashlib.sha256(",".join(users).encode()).hexdigest()[:16]
    send(celery_app, BACKFILL_TASK, {"channel_id": channel_id,
                                     "followers": {"users": users, "timestamp": now_ms}},
         f"backfill-{channel_id}-{now_ms}-{digest}", lane=BULK)
    runtime.history.record_many(
        (channel_id, user_id, [history.entry(
            history.QUEUED, type="follow", by="linecap backfill-followers",
            event=events.event_id(backfill_event(channel_id, user_id, now_ms)),
            reason="LINE lists the user as a follower")])
        for user_id in users)


def backfill_followers(runtime: Runtime, channel_id: str, payload: dict[str, Any],
                       publish: Publish | None = None) -> Outcome:
    """Sync one batch of followers. The batch first reserves the Capillary calls it will need,
    so an empty budget sends it back before its first call rather than half-way. A busy user,
    or one whose registration met a transient error, goes on as a single follow in the bulk
    lane; a refused one is that follower's dead letter. An outage before any registration
    brings the whole batch back later: what it finished is recorded, so the re-run skips it."""
    channel = runtime.channel(channel_id)
    publish = publish or _publish_single
    now_ms = int(payload["timestamp"])
    users = [u for u in payload["users"] if is_line_user_id(u)]
    ended: dict[str, tuple[str, str | None]] = {}  # user -> (outcome, reason), for histories

    def alone(event: dict[str, Any], why: str) -> None:
        publish(channel_id, event)
        ended[events.user_id(event) or ""] = ("requeued", f"{why}: goes on as a single follow")

    def refused(event: dict[str, Any], exc: LinecapError) -> None:
        _dead_letter(runtime, channel_id, event, exc)
        ended[events.user_id(event) or ""] = (Outcome.DEAD_LETTERED,
                                              f"{exc.error_class}: {exc}")

    waiting: list[tuple[str, dict[str, Any], Any, NeedsRegistration]] = []
    try:
        with runtime.limiter.reserve(calls_needed(runtime, channel_id, users, now_ms)), \
                ExitStack() as locks:
            for user_id in users:
                event = backfill_event(channel_id, user_id, now_ms)
                try:
                    locks.enter_context(runtime.state.user_lock(channel_id, user_id))
                except ComeBackLater:
                    alone(event, "the user is busy")
                    continue
                view = runtime.state.user_view(events.event_id(event), channel_id, user_id)
                try:
                    step = begin(runtime, channel, user_id, event, view)
                except PermanentError as exc:
                    refused(event, exc)
                    continue
                if isinstance(step, NeedsRegistration):
                    waiting.append((user_id, event, view, step))
                else:
                    ended[user_id] = (step, None)
            people = [Person(user_id, step.identity) for user_id, _, _, step in waiting]
            results = register_people(runtime, channel, people) if people else {}
            for user_id, event, view, _ in waiting:
                result = results.get(user_id)
                try:
                    if isinstance(result, Registered):
                        ended[user_id] = (finish_registered(
                            runtime, channel, user_id, event, view, result.customer_id),
                            "registered in a batch")
                    elif isinstance(result, TransientError | ComeBackLater):
                        alone(event, str(result))
                    else:
                        refused(event, result or LinecapError("no registration answer"))
                except (TransientError, ComeBackLater) as exc:
                    alone(event, str(exc))
                except PermanentError as exc:
                    refused(event, exc)
    finally:
        _record_endings(runtime, channel_id, now_ms, ended)
    return Outcome.APPLIED


def _record_endings(runtime: Runtime, channel_id: str, now_ms: int,
                    ended: dict[str, tuple[str, str | None]]) -> None:
    """Each follower's outcome in their history, in one round trip (the batch's run has no
    single user for the task frame to write it under)."""
    runtime.history.record_many(
        (channel_id, user_id, [history.entry(
            history.OUTCOME, type="follow", outcome=str(outcome), reason=reason,
            event=events.event_id(backfill_event(channel_id, user_id, now_ms)))])
        for user_id, (outcome, reason) in ended.items())


def calls_needed(runtime: Runtime, channel_id: str, users: list[str],
                 now_ms: int) -> dict[str, int]:
    """Capillary calls per API group a batch makes at most on the usual path: a lookup per
    follower linecap has no customer for, two registration batches for them, a subscription
    per follower not yet synced. (8006 answers look up again outside the reservation.)"""
    progress = runtime.state.batch_progress(channel_id, [
        (events.event_id(backfill_event(channel_id, u, now_ms)), u) for u in users])
    pending = [cached for done, cached in progress if not done]
    unknown = pending.count(False)
    batches = math.ceil(unknown / max(1, runtime.settings.batch_size))
    return {"lookup": unknown, "bulk": 2 * batches, "subscriptions": len(pending)}


def _publish_single(channel_id: str, event: dict[str, Any]) -> None:
    bulk_publisher(current_app, channel_id)(event)


def _dead_letter(runtime: Runtime, channel_id: str, event: dict[str, Any],
                 exc: LinecapError) -> None:
    """Under the event task's name, so a replay goes through the normal follow."""
    job = Job(events.event_id(event), channel_id, event, PROCESS_EVENT_TASK)
    dead_letter(runtime, job, exc.error_class, str(exc), Attempts().failed())
