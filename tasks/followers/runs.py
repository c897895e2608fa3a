"""Runs of the reconciliation over time: when one starts, how it goes on, how it ends.

A channel has at most one run at a time (claimed atomically in Redis). A beat tick starts one
when the channel's interval has passed since the last start, or resumes one that stopped (its
worker died, its continuation was lost, or it paused for the bulk lane); each step then queues
the next until the run is done. The channel's lock keeps two processes from advancing it at
once; a continuation that is not the run's next step is dropped. Whoever runs a step (a worker,
or `linecap reconcile` by hand) goes through `advance`.

When LINE refuses the follower list (403: only verified and premium accounts have it; 401: the
token), the run ends at once with one warning line and that reason in its summary: the next
attempt is the next run, not a retry loop. Another refusal (a 400 that starting the list over
does not cure) ends the run as failed, with one error line. LINE not answering (5xx, 429, a
timeout) pauses the run for a later tick.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from config import LineChannel
from core.errors import ConfigurationError, CredentialsError, LinecapError, TransientError
from core.store.reconciliation import ReconciliationStore, Run
from tasks.followers.reconcile import Reconciler, Step
from workers.runtime import Runtime

log = logging.getLogger("linecap.reconcile")

LOCK_SECONDS = 120  # well past one step (STEP_SECONDS and a page's HTTP timeout)
# A run whose last step is this old, and which is not pausing, has lost its continuation.
STALE_SECONDS = 300
# After LINE failed for a while (5xx, 429, no answer): the next tick tries again after this,
# longer with each failure in a row, up to an hour.
FAILURE_PAUSE_SECONDS = 60
MAX_FAILURE_PAUSE_SECONDS = 3600

CONTINUED, FINISHED, REFUSED, FAILED = "continued", "finished", "refused", "failed"
PAUSED, NOT_DUE, BUSY, SUPERSEDED = "paused", "not_due", "busy", "superseded"


@dataclass(frozen=True)
class Advanced:
    """What a call to `advance` did."""

    status: str
    run: Run | None = None
    summary: dict[str, Any] | None = None

    @property
    def goes_on(self) -> bool:
        """The run wants its next step now."""
        return self.status == CONTINUED


def store_for(runtime: Runtime) -> ReconciliationStore:
    return ReconciliationStore(runtime.redis, runtime.settings.history_ttl_seconds)


def advance(runtime: Runtime, reconciler: Reconciler, *, step: dict[str, Any] | None = None,
            interval: int = 0, start: bool = True, by: str = "schedule",
            repair: bool = False) -> Advanced:
    """One step of the channel's run.

    `step` names a continuation ({"run", "slice"}); without it, this is a tick: start a run
    when `start` and the interval allows (0: whenever none runs), else resume the run in
    progress if it stopped.
    """
    channel = reconciler.channel
    store = store_for(runtime)
    with store.lock(channel.channel_id, LOCK_SECONDS) as held:
        if not held:
            return Advanced(BUSY)
        run = store.current(channel.channel_id)
        if step:
            if run is None or run.run_id != step.get("run") or run.slice != step.get("slice"):
                return Advanced(SUPERSEDED, run)
        elif run is None:
            if not start:
                return Advanced(NOT_DUE)
            run = Run.new(channel.channel_id, by, repair)
            if not store.start(run, interval):
                return Advanced(NOT_DUE)
            log.info("reconciliation started", extra=_fields(run))
        elif not resumable(run):
            return Advanced(NOT_DUE, run)
        else:
            log.info("reconciliation resumed", extra=_fields(run))
        return _step(store, reconciler, run)


def resumable(run: Run, now: float | None = None) -> bool:
    """A run that stopped without a continuation: paused for the bulk lane and due again,
    or silent for STALE_SECONDS."""
    now = time.time() if now is None else now
    if run.paused_until:
        return now >= run.paused_until
    return now - run.updated_at >= STALE_SECONDS


def _step(store: ReconciliationStore, reconciler: Reconciler, run: Run) -> Advanced:
    try:
        result: Step = reconciler.advance(run)
    except (ConfigurationError, CredentialsError) as exc:
        return _refused(store, reconciler.channel, run, exc)
    except TransientError as exc:
        return _failed_for_now(store, run, exc)
    except LinecapError as exc:  # LINE refused a request linecap made: not worth repeating
        log.error("reconciliation failed: %s", exc, extra=_fields(run))
        summary = run.summary("failed", str(exc))
        store.finish(run, summary)
        return Advanced(FAILED, run, summary)
    run.failures = 0
    run.slice += 1
    if result.done:
        summary = run.summary("completed")
        store.finish(run, summary)
        log.info("reconciliation finished", extra={**_fields(run), **run.counts})
        return Advanced(FINISHED, run, summary)
    run.paused_until = time.time() + result.pause if result.pause else None
    store.save(run)
    return Advanced(PAUSED if result.pause else CONTINUED, run)


def _failed_for_now(store: ReconciliationStore, run: Run, exc: TransientError) -> Advanced:
    """LINE did not answer well: the run keeps its place and a later tick goes on."""
    run.failures += 1
    pause = min(FAILURE_PAUSE_SECONDS * 2 ** (run.failures - 1), MAX_FAILURE_PAUSE_SECONDS)
    run.paused_until = time.time() + pause
    run.slice += 1  # a continuation of the failed step is not the run's next one
    store.save(run)
    log.warning("reconciliation paused: %s; going on in %d s", exc, pause,
                extra={**_fields(run), "failures": run.failures})
    return Advanced(PAUSED, run)


def _refused(store: ReconciliationStore, channel: LineChannel, run: Run,
             exc: Exception) -> Advanced:
    """One warning per run, the reason in its summary, and no retry until the next run."""
    if isinstance(exc, ConfigurationError):
        message = (f"LINE refused the follower list of channel {channel.channel_id} ({exc}): "
                   "only verified or premium accounts have it; set "
                   f"LINECAP_RECONCILE_CHANNEL_INTERVALS={channel.channel_id}=0 to stop trying")
    else:
        message = (f"LINE refused the access token of channel {channel.channel_id} ({exc}); "
                   "check access_token in LINE_CHANNELS")
    log.warning("reconciliation skipped: %s", message, extra=_fields(run))
    summary = run.summary("refused", message)
    store.finish(run, summary)
    return Advanced(REFUSED, run, summary)


def _fields(run: Run) -> dict[str, Any]:
    return {"channel": run.channel_id, "run": run.run_id, "by": run.by}
