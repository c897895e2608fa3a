"""Account-link nonces in Redis: issued for one (channel, LINE user), bound by the brand's login
step to a mobile or customer id, and claimed once by the accountLink event that carries it.

A nonce is the only thing tying LINE's "this user finished linking" to "this person proved who
they are", so it is unguessable (`secrets`), expires, and is single use: the first accountLink
event to claim it owns it, and only that same event (re-run after a crash) may claim it again.
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass, field

import redis

PREFIX = "linecap:link:nonce:"
NONCE_PATTERN = re.compile(r"[A-Za-z0-9_-]{16,128}")
ISSUED, BOUND, CLAIMED = "issued", "bound", "claimed"
UNKNOWN, USED, WRONG_USER, UNBOUND = "unknown", "used", "wrong_user", "unbound"

_BIND = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 'unknown' end
if redis.call('HEXISTS', KEYS[1], 'claimed_by') == 1 then return 'used' end
redis.call('HDEL', KEYS[1], 'mobile', 'customer_id', 'name')
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2], 'bound_at', ARGV[4])
if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 'name', ARGV[3]) end
return 'bound'
"""
_CLAIM = """
local claimed_by = redis.call('HGET', KEYS[1], 'claimed_by')
if redis.call('EXISTS', KEYS[1]) == 0 then return 'unknown' end
if claimed_by and claimed_by ~= ARGV[1] then return 'used' end
if redis.call('HGET', KEYS[1], 'channel') ~= ARGV[2]
   or redis.call('HGET', KEYS[1], 'user') ~= ARGV[3] then return 'wrong_user' end
if redis.call('HEXISTS', KEYS[1], 'mobile') == 0
   and redis.call('HEXISTS', KEYS[1], 'customer_id') == 0 then return 'unbound' end
redis.call('HSET', KEYS[1], 'claimed_by', ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 'claimed'
"""
_RECORD = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
return redis.call('HSET', KEYS[1], 'outcome', ARGV[1])
"""


@dataclass(frozen=True)
class LinkNonce:
    nonce: str
    channel_id: str
    line_user_id: str
    link_token: str = field(repr=False)
    created_at: float
    mobile: str | None = None
    customer_id: int | None = None
    name: str | None = None
    claimed_by: str | None = None
    outcome: str | None = None

    @property
    def state(self) -> str:
        if self.claimed_by:
            return CLAIMED
        return BOUND if self.mobile or self.customer_id else ISSUED


class NonceStore:
    def __init__(self, client: redis.Redis, ttl_seconds: int) -> None:
        self.client = client
        self.ttl_seconds = ttl_seconds
        self._bind = client.register_script(_BIND)
        self._claim = client.register_script(_CLAIM)
        self._record = client.register_script(_RECORD)

    def issue(self, channel_id: str, line_user_id: str, link_token: str) -> LinkNonce:
        """A fresh nonce for the LINE link token just issued for this user."""
        nonce = secrets.token_urlsafe(24)
        created = time.time()
        pipe = self.client.pipeline(transaction=True)
        pipe.hset(PREFIX + nonce, mapping={"channel": channel_id, "user": line_user_id,
                                           "token": link_token, "created": created})
        pipe.expire(PREFIX + nonce, self.ttl_seconds)
        pipe.execute()
        return LinkNonce(nonce, channel_id, line_user_id, link_token, created)

    def get(self, nonce: str) -> LinkNonce | None:
        """The nonce's record, or None when it is malformed, unknown or expired."""
        if not NONCE_PATTERN.fullmatch(nonce or ""):
            return None
        data = self.client.hgetall(PREFIX + nonce)
        if not data:
            return None
        customer_id = data.get("customer_id")
        return LinkNonce(
            nonce=nonce, channel_id=data.get("channel", ""), line_user_id=data.get("user", ""),
            link_token=data.get("token", ""), created_at=float(data.get("created", 0)),
            mobile=data.get("mobile"), customer_id=int(customer_id) if customer_id else None,
            name=data.get("name"), claimed_by=data.get("claimed_by"),
            outcome=data.get("outcome"),
        )

    def bind(self, nonce: str, mobile: str | None = None, customer_id: int | None = None,
             name: str | None = None) -> str:
        """BOUND, or UNKNOWN / USED. A bound nonce may be bound again until it is claimed."""
        if (mobile is None) == (customer_id is None):
            raise ValueError("bind needs exactly one of mobile or customer_id")
        if not NONCE_PATTERN.fullmatch(nonce or ""):
            return UNKNOWN
        key, value = ("mobile", mobile) if mobile is not None else ("customer_id", customer_id)
        return self._bind(keys=[PREFIX + nonce], args=[key, value, name or "", time.time()])

    def claim(self, nonce: str, event_id: str, channel_id: str, line_user_id: str,
              claimed_ttl: int) -> tuple[str, LinkNonce | None]:
        """(CLAIMED, record) for the first event with this nonce, and for that event again;
        otherwise (UNKNOWN | USED | WRONG_USER | UNBOUND, None) and the nonce is left as it was.

        A claimed nonce is kept `claimed_ttl` seconds so a re-run of the event still finds it.
        """
        if not NONCE_PATTERN.fullmatch(nonce or ""):
            return UNKNOWN, None
        status = self._claim(keys=[PREFIX + nonce],
                             args=[event_id, channel_id, line_user_id, claimed_ttl])
        return status, (self.get(nonce) if status == CLAIMED else None)

    def record_outcome(self, nonce: str, outcome: str) -> None:
        """Note what became of the link, for the status endpoint; never revives a dead nonce."""
        if NONCE_PATTERN.fullmatch(nonce or ""):
            self._record(keys=[PREFIX + nonce], args=[outcome])
