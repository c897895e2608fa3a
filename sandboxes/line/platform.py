"""The LINE platform side: turns user actions into events and POSTs signed webhooks.

Each delivery serialises the body once and signs those exact bytes, the way LINE does, and
classifies failures with the console's categories (could_not_connect, request_timeout,
error_status_code) so tests can see what LINE would have recorded.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import requests

from .config import Channel
from .events import (
    as_redelivery,
    make_account_link_event,
    make_follow_event,
    make_unfollow_event,
    now_ms,
    webhook_body,
)
from .signing import sign_body, webhook_headers
from .state import SandboxState


class ActionRefused(ValueError):
    """A user action the real app would not allow (e.g. adding a friend twice)."""


@dataclass
class Delivery:
    """Outcome of one webhook POST."""

    status: int | None
    error: str | None
    reason: str
    detail: str
    elapsed_ms: float

    @property
    def ok(self) -> bool:
        return self.reason == "OK"


def post_webhook(
    endpoint: str,
    body: bytes,
    channel_secret: str,
    timeout: float = 2.0,
    signature: str | None = None,
) -> Delivery:
    """POST ``body`` as-is with its signature; no redirects followed, 2xx counts as success."""
    headers = webhook_headers(body, channel_secret)
    if signature is not None:
        headers["x-line-signature"] = signature
    started = time.perf_counter()

    def done(status: int | None, error: str | None, reason: str, detail: str) -> Delivery:
        return Delivery(
            status, error, reason, detail, round((time.perf_counter() - started) * 1000, 1)
        )

    try:
        response = requests.post(
            endpoint, data=body, headers=headers, timeout=timeout, allow_redirects=False
        )
    except requests.exceptions.ConnectTimeout as exc:
        return done(None, f"connect timeout: {exc}", "COULD_NOT_CONNECT", str(exc))
    except requests.exceptions.Timeout as exc:
        return done(None, f"timeout after {timeout}s", "REQUEST_TIMEOUT", str(exc))
    except requests.exceptions.RequestException as exc:
        return done(None, f"could not connect: {exc}", "COULD_NOT_CONNECT", str(exc))
    detail = f"{response.status_code} {response.reason or ''}".strip()
    if 200 <= response.status_code < 300:
        return done(response.status_code, None, "OK", detail)
    return done(response.status_code, f"status {response.status_code}", "ERROR_STATUS_CODE", detail)


def iso_now() -> str:
    """UTC timestamp in the form the webhook test API returns."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Platform:
    """User actions (add, block, account link) and webhook delivery for every channel."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state

    @property
    def timeout(self) -> float:
        return self.state.config.webhook_timeout_seconds

    def deliver(
        self,
        channel: Channel,
        events: list[dict[str, Any]],
        redelivery: bool = False,
        bad_signature: bool = False,
        endpoint: str | None = None,
    ) -> dict[str, Any]:
        """POST one webhook with these events; returns ``{"status","error",...}``."""
        if redelivery:
            events = [as_redelivery(e) for e in events]
        target = endpoint or self.state.endpoint(channel.channel_id)
        if not target:
            return {
                "status": None,
                "error": "no webhook endpoint is set for this channel",
                "reason": "NO_ENDPOINT",
            }
        body = webhook_body(channel.bot_user_id, events)
        signature = sign_body(body, channel.channel_secret + "-wrong") if bad_signature else None
        result = post_webhook(target, body, channel.channel_secret, self.timeout, signature)
        record = {
            "ts": time.time(),
            "channel": channel.channel_id,
            "endpoint": target,
            "eventIds": [e.get("webhookEventId") for e in events],
            "redelivery": redelivery,
            **asdict(result),
        }
        self.state.log_delivery(record)
        return {
            "status": result.status,
            "error": result.error,
            "reason": result.reason,
            "elapsedMs": result.elapsed_ms,
        }

    def test_endpoint(self, channel: Channel, endpoint: str) -> dict[str, Any]:
        """The console's Verify: a signed request with no events."""
        body = webhook_body(channel.bot_user_id, [])
        result = post_webhook(endpoint, body, channel.channel_secret, self.timeout)
        return {
            "success": result.ok,
            "timestamp": iso_now(),
            "statusCode": result.status or 0,
            "reason": result.reason,
            "detail": result.detail,
        }

    def _send(
        self, channel: Channel, event: dict[str, Any], deliver: bool, redeliver: bool
    ) -> dict[str, Any]:
        out: dict[str, Any] = {"event": event}
        if not deliver:
            out["delivery"] = {"status": None, "error": None, "reason": "NOT_DELIVERED"}
            return out
        out["delivery"] = self.deliver(channel, [event])
        if redeliver and out["delivery"]["reason"] not in ("OK", "NO_ENDPOINT"):
            out["redelivery"] = self.deliver(channel, [event], redelivery=True)
        return out

    def follow(
        self,
        channel: Channel,
        user_id: str | None,
        display_name: str | None = None,
        deliver: bool = True,
        redeliver: bool = False,
    ) -> dict[str, Any]:
        """The user taps Add (or unblocks): becomes a friend, a follow event is sent."""
        user, _ = self.state.add_user(channel.channel_id, user_id, display_name)
        uid = user["userId"]
        ts = now_ms()
        unblocked = self.state.befriend(channel.channel_id, uid, ts)
        if unblocked is None:
            raise ActionRefused(f"{uid} is already a friend of channel {channel.channel_id}")
        event = make_follow_event(uid, timestamp_ms=ts, is_unblocked=unblocked)
        return self._send(channel, event, deliver, redeliver)

    def unfollow(
        self, channel: Channel, user_id: str, deliver: bool = True, redeliver: bool = False
    ) -> dict[str, Any]:
        """The user blocks the account: no longer a friend, an unfollow event is sent."""
        if not self.state.block(channel.channel_id, user_id):
            raise ActionRefused(f"{user_id} is not a friend of channel {channel.channel_id}")
        event = make_unfollow_event(user_id)
        return self._send(channel, event, deliver, redeliver)

    def account_link(
        self,
        token: str,
        nonce: str,
        result: str = "ok",
        as_user: str | None = None,
        deliver: bool = True,
    ) -> dict[str, Any]:
        """The person on LINE's account-link page (``as_user``, the LINE user logged in on the
        device; None: the token's own user) finishes it with ``nonce``.

        Returns ``{"event", "delivery", "page"}``; ``event`` is None when nothing was sent.
        """
        # "If the link token has expired or has already been used, no webhook event will be
        # sent and the user will be shown an error." (Messaging API reference, "Account link
        # event"); an unknown token is the same to the user.
        problem = self.state.link_token_problem(token)
        record = None if problem else self.state.use_link_token(token)
        if record is None:
            return {"event": None, "delivery": None,
                    "page": f"error: this link token is {problem or 'used'}"}
        channel = self.state.channel(record["channelId"])
        # "failed: Indicates linking the account failed for any reason, such as due to a user
        # impersonation." (same page, link.result): someone other than the token's user.
        impersonated = as_user is not None and as_user != record["userId"]
        outcome = "failed" if impersonated or result != "ok" else "ok"
        event = make_account_link_event(record["userId"], nonce, outcome)
        out = self._send(channel, event, deliver, redeliver=False)
        out["page"] = "linked" if outcome == "ok" else "failed"
        return out
