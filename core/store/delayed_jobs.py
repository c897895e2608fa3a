"""Jobs that must run again later (retry backoff, budget or user-lock waits), kept in Redis
instead of in the broker.

A Celery countdown is a message held unacknowledged by a worker until it is due, so the broker's
visibility timeout had to outlast the longest wait, and a killed worker's messages came back
only after it. Here a job that must wait is written to a sorted set scored by its due time
(Redis's clock) and its run ends; `workers.mover` publishes it again when it is due.

Moving is claim → publish → done. A claim moves due entries to a `moving` set with a lease;
an entry whose lease ran out (its mover died, or could not publish) is due again at the next
claim. So an entry leaves Redis only after it was published; a mover that dies between the
publish and `done` causes a second publish of the same task id, which the tasks absorb (dedup,
per-user lock, idempotent steps).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import redis

P = "linecap:delayed"
DUE = P  # sorted set: job id -> due time (µs, Redis clock)
MOVING = P + ":moving"  # sorted set: job id -> end of the mover's lease (µs): its claim token
JOBS = P + ":jobs"  # hash: job id -> the job as JSON

_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
"""

# Another copy of the same job may already wait (a duplicate message deferred as well): one
# entry stays, due at the later of the two times, carrying the copy that counted more failures,
# so that neither the backoff nor an attempt is lost.
_DEFER = _NOW + """
local due = now + tonumber(ARGV[3])
local failures = tonumber(ARGV[4])
local waiting = redis.call('ZSCORE', KEYS[1], ARGV[1])
local keep_existing = false
if waiting then
  due = math.max(due, tonumber(waiting))
  local existing = redis.call('HGET', KEYS[3], ARGV[1])
  if existing then
    local ok, doc = pcall(cjson.decode, existing)
    if ok and type(doc) == 'table' and type(doc.failures) == 'number'
        and doc.failures > failures then
      keep_existing = true
    end
  end
end
if not keep_existing then
  redis.call('HSET', KEYS[3], ARGV[1], ARGV[2])
end
redis.call('ZADD', KEYS[1], due, ARGV[1])
return due - now
"""

# Expired leases first (their entries are due now unless a newer copy already waits), then up
# to ARGV[1] due entries move to MOVING until now + ARGV[2]; each comes with its lease end,
# the token that `done` checks.
_CLAIM = _NOW + """
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)
for _, id in ipairs(expired) do
  redis.call('ZREM', KEYS[2], id)
  redis.call('ZADD', KEYS[1], 'NX', now, id)
end
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
local claimed = {}
for _, id in ipairs(due) do
  local job = redis.call('HGET', KEYS[3], id)
  redis.call('ZREM', KEYS[1], id)
  if job then
    local lease = now + tonumber(ARGV[2])
    redis.call('ZADD', KEYS[2], lease, id)
    table.insert(claimed, job)
    table.insert(claimed, string.format('%.0f', lease))
  end
end
return claimed
"""

# The job was published. Its claim goes if it is still this claim (not a later mover's), and
# its entry goes unless the job waits or is being moved again (the published copy already ran
# and was deferred once more).
_DONE = """
local lease = redis.call('ZSCORE', KEYS[2], ARGV[1])
if lease and tonumber(lease) == tonumber(ARGV[2]) then
  redis.call('ZREM', KEYS[2], ARGV[1])
end
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) and not redis.call('ZSCORE', KEYS[2], ARGV[1]) then
  redis.call('HDEL', KEYS[3], ARGV[1])
end
"""


US = 1_000_000


@dataclass(frozen=True)
class DelayedJob:
    """One message to publish again: the task, its id (the dedup key), its kwargs, the
    failures counted so far (the copy that counted more wins when two wait), and the lane it
    ran in (a back-filled event goes back to the bulk lane, not ahead of live events)."""

    task: str
    task_id: str
    kwargs: dict[str, Any]
    failures: int = 0
    lane: str | None = None  # None: the task's default lane

    def to_json(self) -> str:
        return json.dumps({"task": self.task, "task_id": self.task_id, "kwargs": self.kwargs,
                           "failures": self.failures, "lane": self.lane})

    @classmethod
    def from_json(cls, raw: str) -> DelayedJob:
        doc = json.loads(raw)
        return cls(doc["task"], doc["task_id"], doc["kwargs"], int(doc.get("failures", 0)),
                   doc.get("lane"))


@dataclass(frozen=True)
class Claim:
    """A due job handed to one mover, and the token `done` checks."""

    job: DelayedJob
    token: str


class DelayedJobs:
    """The store of jobs waiting for their time; every change is one atomic Redis script."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self._defer = client.register_script(_DEFER)
        self._claim = client.register_script(_CLAIM)
        self._done = client.register_script(_DONE)

    def defer(self, job: DelayedJob, delay_seconds: float) -> float:
        """Keep the job until `delay_seconds` from now (Redis's clock); returns the seconds it
        will wait (longer when a copy of it already waits longer)."""
        waits = self._defer(keys=[DUE, MOVING, JOBS],
                            args=[job.task_id, job.to_json(),
                                  max(int(delay_seconds * US), 0), job.failures])
        return int(waits) / US

    def claim(self, limit: int, lease_seconds: float) -> list[Claim]:
        """Up to `limit` due jobs, each held for this caller for `lease_seconds`."""
        raw = self._claim(keys=[DUE, MOVING, JOBS], args=[limit, int(lease_seconds * US)])
        return [Claim(DelayedJob.from_json(raw[i]), raw[i + 1]) for i in range(0, len(raw), 2)]

    def done(self, claim: Claim) -> None:
        """The claimed job was published: forget it (unless it waits again already)."""
        self._done(keys=[DUE, MOVING, JOBS], args=[claim.job.task_id, claim.token])

    def waiting(self) -> int:
        """Jobs waiting for their time or being moved."""
        pipe = self.client.pipeline(transaction=False)
        pipe.zcard(DUE)
        pipe.zcard(MOVING)
        return sum(int(n) for n in pipe.execute())

    def get(self, task_id: str) -> tuple[DelayedJob, float] | None:
        """The waiting job and its due time (epoch seconds, Redis's clock), or None."""
        pipe = self.client.pipeline(transaction=False)
        pipe.hget(JOBS, task_id)
        pipe.zscore(DUE, task_id)
        raw, due = pipe.execute()
        if raw is None or due is None:
            return None
        return DelayedJob.from_json(raw), float(due) / US
