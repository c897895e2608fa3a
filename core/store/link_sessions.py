"""Account-link sessions in Redis, in LINE's documented sequence ("linking-accounts"):

1. issue — the brand asks to link a LINE user; linecap holds LINE's link token under a fresh,
   unguessable session id. The session id is in the link page's URL, which travels through
   chats and can be forwarded: it lets anyone reach the brand's login, and nothing more.
2. bind — after the brand's login (its server, with an API key) says who the person is, a
   fresh nonce is made and returned to that server only, which redirects the browser that
   logged in straight to LINE with it. A second bind replaces the nonce.
3. claim — the `ok` accountLink event carrying the current nonce claims the session, once;
   burn — a `failed` one ends the session, so its nonce can never be claimed.

Redis holds a digest of each nonce, never the nonce. Every key expires.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from dataclasses import dataclass, field

import redis

PREFIX = "linecap:link:session:"
NONCE_PREFIX = "linecap:link:nonce:"
SESSION_PATTERN = re.compile(r"[A-Za-z0-9_-]{32}")  # secrets.token_urlsafe(24)
ISSUED, BOUND, CLAIMED, FAILED = "issued", "bound", "claimed", "failed"
UNKNOWN, USED, WRONG_USER, BURNED = "unknown", "used", "wrong_user", "burned"

_BIND = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 'unknown' end
if redis.call('HEXISTS', KEYS[1], 'claimed_by') == 1 then return 'used' end
if redis.call('HEXISTS', KEYS[1], 'failed_at') == 1 then return 'failed' end
redis.call('HDEL', KEYS[1], 'mobile', 'customer_id', 'name')
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2], 'bound_at', ARGV[4], 'nonce', ARGV[5])
if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 'name', ARGV[3]) end
if ARGV[7] ~= '' then redis.call('HSET', KEYS[1], 'token', ARGV[7], 'token_at', ARGV[4]) end
redis.call('EXPIRE', KEYS[1], ARGV[6])
redis.call('SET', KEYS[2], ARGV[8], 'EX', ARGV[6])
return 'bound'
"""
_CLAIM = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 'unknown' end
local claimed_by = redis.call('HGET', KEYS[1], 'claimed_by')
local current = redis.call('HGET', KEYS[1], 'nonce') == ARGV[1]
if claimed_by then
  if claimed_by == ARGV[2] and current then return 'claimed' end
  return 'used'
end
if redis.call('HEXISTS', KEYS[1], 'failed_at') == 1 then return 'used' end
if not current then return 'unknown' end
if redis.call('HGET', KEYS[1], 'channel') ~= ARGV[3]
   or redis.call('HGET', KEYS[1], 'user') ~= ARGV[4] then
  redis.call('HSET', KEYS[1], 'failed_at', ARGV[6], 'outcome', ARGV[7])
  return 'wrong_user'
end
redis.call('HSET', KEYS[1], 'claimed_by', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return 'claimed'
"""
_BURN = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 'unknown' end
if redis.call('HEXISTS', KEYS[1], 'claimed_by') == 1 then return 'used' end
if redis.call('HGET', KEYS[1], 'nonce') ~= ARGV[1] then return 'unknown' end
redis.call('HSET', KEYS[1], 'failed_at', ARGV[2], 'outcome', ARGV[3])
return 'burned'
"""
_RECORD = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
return redis.call('HSET', KEYS[1], 'outcome', ARGV[1])
"""


@dataclass(frozen=True)
class LinkSession:
    session_id: str
    channel_id: str
    line_user_id: str
    link_token: str = field(repr=False)
    token_issued_at: float
    created_at: float
    display_name: str | None = None
    mobile: str | None = field(default=None, repr=False)
    customer_id: int | None = None
    name: str | None = field(default=None, repr=False)
    claimed_by: str | None = None
    failed: bool = False
    outcome: str | None = None

    @property
    def state(self) -> str:
        if self.claimed_by:
            return CLAIMED
        if self.failed:
            return FAILED
        return BOUND if self.mobile or self.customer_id else ISSUED


@dataclass(frozen=True)
class Binding:
    """What a bind gives the brand's server: the nonce, for the redirect to LINE only."""

    status: str  # BOUND, or UNKNOWN / USED / FAILED
    nonce: str | None = field(default=None, repr=False)


def nonce_digest(nonce: str) -> str:
    return hashlib.sha256(nonce.encode()).hexdigest()


def new_nonce() -> str:
    """LINE asks for 10-255 characters, at least 128 bits, Base64, unpredictable: 192 bits."""
    return secrets.token_urlsafe(24)


class LinkSessionStore:
    def __init__(self, client: redis.Redis, ttl_seconds: int) -> None:
        self.client = client
        self.ttl_seconds = ttl_seconds
        self._bind = client.register_script(_BIND)
        self._claim = client.register_script(_CLAIM)
        self._burn = client.register_script(_BURN)
        self._record = client.register_script(_RECORD)

    def issue(self, channel_id: str, line_user_id: str, link_token: str,
              display_name: str | None = None) -> LinkSession:
        """A fresh session for the LINE link token just issued for this user."""
        session_id = secrets.token_urlsafe(24)
        now = time.time()
        mapping = {"channel": channel_id, "user": line_user_id, "token": link_token,
                   "token_at": now, "created": now}
        if display_name:
            mapping["display"] = display_name[:100]
        pipe = self.client.pipeline(transaction=True)
        pipe.hset(PREFIX + session_id, mapping=mapping)
        pipe.expire(PREFIX + session_id, self.ttl_seconds)
        pipe.execute()
        return LinkSession(session_id, channel_id, line_user_id, link_token, now, now,
                           display_name)

    def get(self, session_id: str) -> LinkSession | None:
        """The session, or None when the id is malformed, unknown or expired."""
        if not SESSION_PATTERN.fullmatch(session_id or ""):
            return None
        data = self.client.hgetall(PREFIX + session_id)
        if not data:
            return None
        customer_id = data.get("customer_id")
        return LinkSession(
            session_id=session_id, channel_id=data.get("channel", ""),
            line_user_id=data.get("user", ""), link_token=data.get("token", ""),
            token_issued_at=float(data.get("token_at", 0)),
            created_at=float(data.get("created", 0)), display_name=data.get("display"),
            mobile=data.get("mobile"), customer_id=int(customer_id) if customer_id else None,
            name=data.get("name"), claimed_by=data.get("claimed_by"),
            failed="failed_at" in data, outcome=data.get("outcome"))

    def bind(self, session_id: str, mobile: str | None = None, customer_id: int | None = None,
             name: str | None = None, new_link_token: str | None = None) -> Binding:
        """A fresh nonce for the person the brand's login found (replacing an earlier one),
        and the new link token when the old one was re-issued; or why not."""
        if (mobile is None) == (customer_id is None):
            raise ValueError("bind needs exactly one of mobile or customer_id")
        if not SESSION_PATTERN.fullmatch(session_id or ""):
            return Binding(UNKNOWN)
        nonce = new_nonce()
        digest = nonce_digest(nonce)
        key, value = ("mobile", mobile) if mobile is not None else ("customer_id", customer_id)
        status = self._bind(keys=[PREFIX + session_id, NONCE_PREFIX + digest],
                            args=[key, value, name or "", time.time(), digest, self.ttl_seconds,
                                  new_link_token or "", session_id])
        return Binding(status, nonce if status == BOUND else None)

    def claim(self, nonce: str, event_id: str, channel_id: str, line_user_id: str,
              claimed_ttl: int) -> tuple[str, LinkSession | None]:
        """(CLAIMED, session) for the first `ok` event with the session's current nonce, and
        for that event again (a re-run); otherwise (UNKNOWN | USED | WRONG_USER, None). A
        nonce presented for another LINE user or channel ends the session.

        A claimed session is kept `claimed_ttl` seconds so a re-run still finds it.
        """
        session_id = self.session_of(nonce)
        if session_id is None:
            return UNKNOWN, None
        status = self._claim(keys=[PREFIX + session_id],
                             args=[nonce_digest(nonce), event_id, channel_id, line_user_id,
                                   claimed_ttl, time.time(), "link_refused_wrong_user"])
        return status, (self.get(session_id) if status == CLAIMED else None)

    def burn(self, nonce: str, outcome: str) -> str:
        """A `failed` event ends the session of its nonce: BURNED, or UNKNOWN / USED (a
        session already claimed keeps its success)."""
        session_id = self.session_of(nonce)
        if session_id is None:
            return UNKNOWN
        return self._burn(keys=[PREFIX + session_id],
                          args=[nonce_digest(nonce), time.time(), outcome])

    def session_of(self, nonce: str) -> str | None:
        if not isinstance(nonce, str) or not nonce:
            return None
        return self.client.get(NONCE_PREFIX + nonce_digest(nonce))

    def record_outcome(self, session_id: str, outcome: str) -> None:
        """Note what became of the link, for the status endpoint; never revives a session."""
        if SESSION_PATTERN.fullmatch(session_id or ""):
            self._record(keys=[PREFIX + session_id], args=[outcome])
