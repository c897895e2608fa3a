"""A lease in Redis: one process among several holds it, renewing it before it expires; when
the holder stops (or stops renewing), another takes it. Used so that exactly one beat process
sends the schedule however many are started, and one process at a time advances a channel's
reconciliation run."""

from __future__ import annotations

import redis

# Take the lease when it is free, renew it when it is ours; 1 when held after the call.
_HOLD = """
local current = redis.call('GET', KEYS[1])
if current == ARGV[1] or not current then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', tonumber(ARGV[2]))
  return 1
end
return 0
"""
# Delete a key only while it still holds our token: a holder whose lease expired must not free
# the next holder's (the user locks use it too).
RELEASE_IF_HELD = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class Lease:
    def __init__(self, client: redis.Redis, key: str, ttl_seconds: float, holder: str) -> None:
        self.client = client
        self.key = key
        self.ttl_ms = int(ttl_seconds * 1000)
        self.holder = holder
        self._hold = client.register_script(_HOLD)
        self._release = client.register_script(RELEASE_IF_HELD)

    def hold(self) -> bool:
        """Take or renew the lease; True while this holder has it."""
        return bool(self._hold(keys=[self.key], args=[self.holder, self.ttl_ms]))

    def current_holder(self) -> str | None:
        return self.client.get(self.key)

    def release(self) -> None:
        """Give it up at once (a clean shutdown), if it is still ours."""
        self._release(keys=[self.key], args=[self.holder])
