"""The reconciliation's own records in Redis, per channel: the run in progress (so a run is
resumed where it stopped, by any worker), the last run's summary (the ops API and the metrics
read it), when the last run started (what the schedule counts from), and a short lock so that
one process at a time advances a channel's run.
"""

from __future__ import annotations

import json
import secrets
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import redis

from core.store.lease import Lease

P = "linecap:reconcile:"
# A run left alone this long is dropped: its LINE cursor (valid 24 h) is long dead.
RUN_TTL_SECONDS = 2 * 24 * 3600
SAMPLE_SIZE = 100  # user ids kept in a summary, per list

# KEYS: run, last-started; ARGV: run JSON, now, interval (0: start whenever none runs), run
# ttl, last-started ttl. Checked and claimed in one step, so two ticks never start two runs.
_START = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local interval = tonumber(ARGV[3])
if interval > 0 then
  local last = tonumber(redis.call('GET', KEYS[2]) or '')
  if last ~= nil and last + interval > tonumber(ARGV[2]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', tonumber(ARGV[4]))
redis.call('SET', KEYS[2], ARGV[2], 'EX', tonumber(ARGV[5]))
return 1
"""


@dataclass
class Run:
    """One pass over a channel's followers, then over linecap's followed users (drift)."""

    run_id: str
    channel_id: str
    started_at: float
    updated_at: float
    by: str = "schedule"  # or "cli"
    repair: bool = False  # queue unfollows for the drift
    phase: str = "followers"  # then "drift"
    cursor: str | None = None  # LINE's `next`
    cursor_at: float | None = None
    scan_cursor: int = 0
    slice: int = 0  # how many steps ran: a continuation message names the next one
    paused_until: float | None = None  # waiting for the bulk lane, or after LINE failed
    failures: int = 0  # LINE's transient failures in a row
    restarts: int = 0  # pages started over because LINE's cursor had expired
    counts: dict[str, int] = field(default_factory=dict)
    queued_sample: list[str] = field(default_factory=list)
    drift_sample: list[str] = field(default_factory=list)

    @classmethod
    def new(cls, channel_id: str, by: str, repair: bool, now: float | None = None) -> Run:
        now = time.time() if now is None else now
        # A letter first: an id of digits alone would read as a mobile number and be masked.
        return cls("r" + secrets.token_hex(4), channel_id, now, now, by=by, repair=repair)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Run:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def count(self, name: str, n: int = 1) -> None:
        self.counts[name] = self.counts.get(name, 0) + n

    def sample(self, which: list[str], users: list[str]) -> None:
        which.extend(users[:max(SAMPLE_SIZE - len(which), 0)])

    def progress(self) -> dict[str, Any]:
        """Where a run in progress is, for an operator (LINE's cursor left out)."""
        data = asdict(self)
        data.pop("cursor")
        return data

    def summary(self, status: str, message: str = "", now: float | None = None
                ) -> dict[str, Any]:
        data = asdict(self)
        for key in ("cursor", "cursor_at", "scan_cursor", "phase", "slice", "updated_at",
                    "paused_until", "failures"):
            data.pop(key)
        data.update(status=status, message=message,
                    finished_at=time.time() if now is None else now)
        return data


class ReconciliationStore:
    def __init__(self, client: redis.Redis, summary_ttl_seconds: int) -> None:
        self.client = client
        self.summary_ttl_seconds = summary_ttl_seconds
        self._start = client.register_script(_START)

    def current(self, channel_id: str) -> Run | None:
        raw = self.client.get(_key(channel_id, "run"))
        return Run.from_json(json.loads(raw)) if raw else None

    def start(self, run: Run, interval: int = 0) -> bool:
        """Claim the channel for `run`: only when none runs and, with an interval, the last
        run started at least that long ago. True when claimed."""
        claimed = self._start(
            keys=[_key(run.channel_id, "run"), _key(run.channel_id, "last-started")],
            args=[json.dumps(asdict(run)), repr(run.started_at), interval, RUN_TTL_SECONDS,
                  max(self.summary_ttl_seconds, interval)])
        return bool(claimed)

    def save(self, run: Run) -> None:
        run.updated_at = time.time()
        self.client.set(_key(run.channel_id, "run"), json.dumps(asdict(run)),
                        ex=RUN_TTL_SECONDS, xx=True)

    def finish(self, run: Run, summary: dict[str, Any]) -> None:
        """The run's summary becomes the channel's last one, and the run is over."""
        pipe = self.client.pipeline(transaction=True)
        pipe.set(_key(run.channel_id, "last"), json.dumps(summary), ex=self.summary_ttl_seconds)
        pipe.delete(_key(run.channel_id, "run"))
        pipe.execute()

    def abandon(self, channel_id: str) -> None:
        self.client.delete(_key(channel_id, "run"))

    def last(self, channel_id: str) -> dict[str, Any] | None:
        raw = self.client.get(_key(channel_id, "last"))
        return json.loads(raw) if raw else None

    def view(self, channel_id: str, interval_seconds: int) -> dict[str, Any]:
        """A channel's reconciliation for an operator (the ops API, `linecap reconcile
        --last`): its interval, the last run's summary and the run in progress."""
        running = self.current(channel_id)
        return {"interval_seconds": interval_seconds, "last": self.last(channel_id),
                "running": running.progress() if running else None}

    def lasts(self, channel_ids: list[str]) -> list[dict[str, Any] | None]:
        """Every channel's last summary in one round trip (the metrics scrape)."""
        if not channel_ids:
            return []
        raws = self.client.mget([_key(c, "last") for c in channel_ids])
        return [json.loads(raw) if raw else None for raw in raws]

    @contextmanager
    def lock(self, channel_id: str, seconds: int) -> Iterator[bool]:
        """Hold the channel's lock for the block (True), or do without it (False)."""
        lease = Lease(self.client, _key(channel_id, "lock"), seconds, uuid.uuid4().hex)
        held = lease.hold()
        try:
            yield held
        finally:
            if held:
                lease.release()


def _key(channel_id: str, what: str) -> str:
    return f"{P}{channel_id}:{what}"
