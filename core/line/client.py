"""The LINE Messaging API calls linecap makes, with the channel's access token.

LINE's limits are per channel and per endpoint and far above what linecap calls, so there is no
shared budget here; errors map onto the same transient/permanent classes as Capillary's. Every
answer that is not a success is logged with its X-Line-Request-Id, which LINE's support asks
for.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import requests

from config import LineChannel
from core.errors import ConfigurationError, CredentialsError, InvalidInputError, TransientError
from core.validation import is_line_user_id

# LINE: "Link tokens are valid for 10 minutes and can only be used once" (Messaging API
# reference, "Issue link token"; line-openapi messaging-api.yml, IssueLinkTokenResponse).
LINK_TOKEN_SECONDS = 600

log = logging.getLogger("linecap.line_api")


class LineRateLimited(TransientError):
    """LINE answered 429: that endpoint's limit for the channel is used up for now (the
    webhook test allows 60 calls an hour)."""


class LineApiClient:
    def __init__(self, base_url: str, timeout: float = 5.0,
                 session: requests.Session | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.session = session or requests.Session()

    def profile(self, channel: LineChannel, user_id: str) -> dict[str, Any] | None:
        """The user's LINE profile, or None when they are not (or no longer) a friend."""
        response = self._request(channel, "GET", f"/v2/bot/profile/{_checked(user_id)}",
                                 "profile")
        if response.status_code == 404:
            return None
        return self._json(response, "profile")

    def follower_ids(self, channel: LineChannel, limit: int = 1000) -> Iterator[str]:
        """Every current follower's userId, page by page (verified/premium accounts only)."""
        start: str | None = None
        while True:
            ids, start = self.follower_page(channel, start, limit)
            yield from ids
            if not start:
                return

    def follower_page(self, channel: LineChannel, start: str | None = None,
                      limit: int = 1000) -> tuple[list[str], str | None]:
        """One page of follower ids and the `next` cursor (None on the last page). A cursor
        is valid for 24 hours; an expired one is refused as bad input (400)."""
        params: dict[str, Any] = {"limit": limit}
        if start:
            params["start"] = start
        response = self._request(channel, "GET", "/v2/bot/followers/ids", "followers",
                                 params=params)
        body = self._json(response, "followers")
        ids = body.get("userIds")
        following = body.get("next")
        return ([i for i in ids if isinstance(i, str)] if isinstance(ids, list) else [],
                following if isinstance(following, str) and following else None)

    def issue_link_token(self, channel: LineChannel, user_id: str) -> str:
        response = self._request(channel, "POST", f"/v2/bot/user/{_checked(user_id)}/linkToken",
                                 "linkToken")
        return str(self._json(response, "linkToken")["linkToken"])

    def bot_info(self, channel: LineChannel) -> dict[str, Any]:
        return self._json(self._request(channel, "GET", "/v2/bot/info", "info"), "info")

    def webhook_endpoint(self, channel: LineChannel) -> dict[str, Any] | None:
        """`{endpoint, active}`, or None when no endpoint is set (LINE answers 404)."""
        response = self._request(channel, "GET", "/v2/bot/channel/webhook/endpoint", "endpoint")
        if response.status_code == 404:
            return None
        return self._json(response, "endpoint")

    def set_webhook_endpoint(self, channel: LineChannel, url: str) -> None:
        response = self._request(channel, "PUT", "/v2/bot/channel/webhook/endpoint", "endpoint",
                                 json_body={"endpoint": url})
        self._json(response, "endpoint")

    def test_webhook(self, channel: LineChannel, url: str | None = None) -> dict[str, Any]:
        """LINE's own request to the endpoint (`url`, else the one set): `statusCode` is 0 or
        below when nothing answered. 60 calls an hour per channel."""
        response = self._request(channel, "POST", "/v2/bot/channel/webhook/test", "webhookTest",
                                 json_body={"endpoint": url} if url else {})
        return self._json(response, "webhookTest")

    def _request(self, channel: LineChannel, method: str, path: str, name: str,
                 params: dict | None = None, json_body: dict | None = None) -> requests.Response:
        headers = {"Authorization": f"Bearer {channel.access_token}"}
        try:
            response = self.session.request(method, self.base_url + path, params=params,
                                            json=json_body, headers=headers,
                                            timeout=self.timeout)
        except requests.RequestException as exc:
            raise TransientError(f"LINE {name}: {type(exc).__name__}") from None
        if not response.ok:
            log.warning("LINE %s answered HTTP %s", name, response.status_code, extra={
                "line_request_id": response.headers.get("X-Line-Request-Id"),
                "channel": channel.channel_id})
        return response

    @staticmethod
    def _json(response: requests.Response, name: str) -> dict[str, Any]:
        status = response.status_code
        label = f"LINE {name}: HTTP {status}"
        if status == 429:
            raise LineRateLimited(f"{label} (rate limit of this endpoint used up)")
        if status >= 500:
            raise TransientError(label)
        if status == 401:
            raise CredentialsError(f"{label} (channel access token refused)")
        if status == 403:
            raise ConfigurationError(f"{label} (not available for this account)")
        if status >= 400:
            raise InvalidInputError(f"{label}{_problem(response)}")
        try:
            body = response.json()
        except ValueError:
            return {}
        return body if isinstance(body, dict) else {}


def _problem(response: requests.Response) -> str:
    """LINE's own words for a refused request (`message` and `details`), if any."""
    try:
        body = response.json()
    except ValueError:
        return ""
    if not isinstance(body, dict):
        return ""
    words = [str(body.get("message") or "")]
    words += [f"{d.get('property', '')}: {d.get('message', '')}".strip(": ")
              for d in body.get("details") or [] if isinstance(d, dict)]
    text = "; ".join(w for w in words if w)
    return f" ({text[:300]})" if text else ""


def _checked(user_id: str) -> str:
    """A user id goes into a URL path with the channel's token: only a LINE id may (an id like
    `../../v2/bot/info` would call another endpoint)."""
    if not is_line_user_id(user_id):
        raise InvalidInputError("not a LINE user id (U followed by 32 lowercase hex characters)")
    return user_id
