"""Thread-safe in-memory state of the fake LINE platform.

The werkzeug server is threaded and a delivery can call back into the sandbox, so every read
and write goes through one lock and returns copies, never live structures.
"""

from __future__ import annotations

import copy
import secrets
import string
import threading
import time
from collections import deque
from typing import Any

from .config import Channel, LineSandboxConfig
from .events import new_user_id

_TOKEN_ALPHABET = string.ascii_letters + string.digits


class UnknownChannel(LookupError):
    """No channel with that id is configured."""


class SandboxState:
    """Channels, users and friendships, link tokens, endpoints and the logs tests assert on."""

    def __init__(self, config: LineSandboxConfig) -> None:
        self.config = config
        self._lock = threading.RLock()
        self.channels: dict[str, Channel] = {c.channel_id: c for c in config.parsed_channels()}
        self._by_token = {c.access_token: c for c in self.channels.values()}
        self.reset()

    def reset(self) -> None:
        """Forget users, friends, tokens, logs; endpoints go back to the configured ones."""
        with self._lock:
            self._users: dict[str, dict[str, dict[str, Any]]] = {c: {} for c in self.channels}
            self._friends: dict[str, dict[str, int]] = {c: {} for c in self.channels}
            self._endpoints: dict[str, str | None] = {
                c.channel_id: c.webhook_endpoint for c in self.channels.values()
            }
            self._link_tokens: dict[str, dict[str, Any]] = {}
            self._cursors: dict[str, dict[str, Any]] = {}
            self._retry_keys: dict[tuple[str, str], dict[str, Any]] = {}
            self._rate: dict[tuple[str, str], deque[float]] = {}
            self._pending_endpoints: dict[str, tuple[str, float]] = {}
            self._requests: list[dict[str, Any]] = []
            self._deliveries: list[dict[str, Any]] = []
            self._pushes: list[dict[str, Any]] = []

    # -- channels -------------------------------------------------------------------------
    def channel_for_token(self, token: str) -> Channel | None:
        """The channel whose access token this is."""
        return self._by_token.get(token)

    def channel(self, channel_id: str | None) -> Channel:
        """Channel by id; with one channel configured the id may be omitted."""
        if not channel_id and len(self.channels) == 1:
            return next(iter(self.channels.values()))
        if channel_id not in self.channels:
            raise UnknownChannel(channel_id)
        return self.channels[channel_id]

    def take_rate_slot(self, channel: Channel, group: str = "default") -> bool:
        """Count a request against the channel's budget for that group of endpoints; False
        when over it. A channel's `rate_limit_per_second` replaces the default group's."""
        count, seconds = self.config.rate_limits.get(group, self.config.rate_limits["default"])
        if group == "default" and channel.rate_limit_per_second is not None:
            count, seconds = int(channel.rate_limit_per_second), 1.0
        now = time.monotonic()
        with self._lock:
            window = self._rate.setdefault((channel.channel_id, group), deque())
            while window and now - window[0] >= seconds:
                window.popleft()
            if len(window) >= count:
                return False
            window.append(now)
            return True

    # -- users and friendship -------------------------------------------------------------
    def add_user(
        self, channel_id: str, user_id: str | None = None, display_name: str | None = None
    ) -> tuple[dict[str, Any], bool]:
        """Register (or rename) a LINE user known to the channel; returns (user, created)."""
        uid = user_id or new_user_id()
        with self._lock:
            users = self._users[channel_id]
            created = uid not in users
            if created:
                users[uid] = {
                    "userId": uid,
                    "displayName": display_name or f"Sandbox user {uid[1:7]}",
                    "language": "en",
                    "pictureUrl": f"https://profile.line-scdn.net/sandbox/{uid}",
                    "statusMessage": "Hello from the LINE sandbox",
                    "hasBlocked": False,
                }
            elif display_name:
                users[uid]["displayName"] = display_name
            return dict(users[uid]), created

    def is_friend(self, channel_id: str, user_id: str) -> bool:
        """Whether the user currently has the account as a friend (added, not blocked)."""
        with self._lock:
            return user_id in self._friends[channel_id]

    def profile(self, channel_id: str, user_id: str) -> dict[str, Any] | None:
        """The profile LINE returns, or None when the user is not a friend."""
        with self._lock:
            if user_id not in self._friends[channel_id]:
                return None
            user = self._users[channel_id][user_id]
            return {
                k: user[k]
                for k in ("displayName", "userId", "language", "pictureUrl", "statusMessage")
            }

    def befriend(self, channel_id: str, user_id: str, at_ms: int) -> bool | None:
        """Mark as friend: True for an unblock, False for a first add, None if already one."""
        with self._lock:
            if user_id in self._friends[channel_id]:
                return None
            user = self._users[channel_id][user_id]
            self._friends[channel_id][user_id] = at_ms
            return bool(user["hasBlocked"])

    def block(self, channel_id: str, user_id: str) -> bool:
        """The user blocks the account; False (and no change) when it was not a friend."""
        with self._lock:
            if self._friends[channel_id].pop(user_id, None) is None:
                return False
            self._users[channel_id][user_id]["hasBlocked"] = True
            return True

    def friend_ids(self, channel_id: str) -> list[str]:
        """Current friends in the order they (last) became friends."""
        with self._lock:
            return list(self._friends[channel_id])

    # -- followers paging -----------------------------------------------------------------
    def open_cursor(self, channel_id: str, ids: list[str], offset: int) -> str:
        """Remember the rest of a followers listing; the token is the ``next`` value."""
        token = "".join(secrets.choice(_TOKEN_ALPHABET) for _ in range(40))
        with self._lock:
            self._cursors[token] = {
                "channel": channel_id,
                "ids": ids,
                "offset": offset,
                "expires": time.time() + self.config.followers_next_ttl_seconds,
            }
        return token

    def take_cursor(self, channel_id: str, token: str) -> tuple[list[str], int] | None:
        """The snapshot and offset a ``start`` token stands for, or None if unknown/expired."""
        with self._lock:
            cursor = self._cursors.get(token)
            if not cursor or cursor["channel"] != channel_id or cursor["expires"] < time.time():
                return None
            return cursor["ids"], cursor["offset"]

    # -- link tokens ----------------------------------------------------------------------
    def issue_link_token(self, channel_id: str, user_id: str) -> dict[str, Any]:
        """A fresh 32-char link token for the user, valid ``link_token_ttl_seconds``."""
        token = "".join(secrets.choice(_TOKEN_ALPHABET) for _ in range(32))
        now = time.time()
        record = {
            "linkToken": token,
            "userId": user_id,
            "channelId": channel_id,
            "issuedAt": now,
            "expiresAt": now + self.config.link_token_ttl_seconds,
            "used": False,
        }
        with self._lock:
            self._link_tokens[token] = record
        return dict(record)

    def link_token_problem(self, token: str) -> str | None:
        """Why LINE's page would refuse this token now ("unknown", "used", "expired"), or None.

        Link tokens are "valid for 10 minutes and can only be used once" (Messaging API
        reference, "Issue link token"; line-openapi messaging-api.yml, IssueLinkTokenResponse).
        """
        with self._lock:
            return self._problem(self._link_tokens.get(token))

    def use_link_token(self, token: str) -> dict[str, Any] | None:
        """Consume a token: the record when it was valid and unused, else None."""
        with self._lock:
            record = self._link_tokens.get(token)
            if self._problem(record) is not None:
                return None
            assert record is not None
            record["used"] = True
            return dict(record)

    @staticmethod
    def _problem(record: dict[str, Any] | None) -> str | None:
        if record is None:
            return "unknown"
        if record["used"]:
            return "used"
        if record["expiresAt"] < time.time():
            return "expired"
        return None

    def link_token(self, token: str) -> dict[str, Any] | None:
        """The raw record (valid or not), for choosing the channel of a failed link."""
        with self._lock:
            record = self._link_tokens.get(token)
            return dict(record) if record else None

    # -- webhook endpoint -----------------------------------------------------------------
    def set_endpoint(self, channel_id: str, endpoint: str, at_once: bool = False) -> None:
        """Takes effect after `endpoint_propagation_seconds`, as on LINE (the console's own
        setting, `at_once`, takes effect immediately)."""
        delay = 0.0 if at_once else self.config.endpoint_propagation_seconds
        with self._lock:
            self._pending_endpoints[channel_id] = (endpoint, time.monotonic() + delay)

    def endpoint(self, channel_id: str) -> str | None:
        """The endpoint in effect now (deliveries and GET see the same one)."""
        with self._lock:
            pending = self._pending_endpoints.get(channel_id)
            if pending is not None and pending[1] <= time.monotonic():
                self._endpoints[channel_id] = pending[0]
                del self._pending_endpoints[channel_id]
            return self._endpoints.get(channel_id)

    # -- push idempotency -----------------------------------------------------------------
    def accept_retry_key(
        self, channel_id: str, key: str, record: dict[str, Any]
    ) -> dict[str, Any] | None:
        """Store the first use of a retry key; returns the earlier record on a repeat."""
        with self._lock:
            earlier = self._retry_keys.get((channel_id, key))
            if earlier is not None:
                return dict(earlier)
            self._retry_keys[(channel_id, key)] = record
            return None

    # -- logs -----------------------------------------------------------------------------
    def log_request(self, record: dict[str, Any]) -> None:
        with self._lock:
            self._requests.append(record)

    def log_delivery(self, record: dict[str, Any]) -> None:
        with self._lock:
            self._deliveries.append(record)

    def log_push(self, record: dict[str, Any]) -> None:
        with self._lock:
            self._pushes.append(record)

    def requests(self) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self._requests)

    def deliveries(self) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self._deliveries)

    def snapshot(self) -> dict[str, Any]:
        """Everything a test may want to look at, JSON-ready."""
        with self._lock:
            channels = {}
            for cid, ch in self.channels.items():
                channels[cid] = {
                    "name": ch.name,
                    "botUserId": ch.bot_user_id,
                    "basicId": ch.basic_id,
                    "verified": ch.verified,
                    "webhookEndpoint": self._endpoints.get(cid),
                    "friends": list(self._friends[cid]),
                    "users": copy.deepcopy(self._users[cid]),
                }
            return {
                "channels": channels,
                "linkTokens": [dict(r) for r in self._link_tokens.values()],
                "pushes": copy.deepcopy(self._pushes),
                "deliveries": len(self._deliveries),
            }
