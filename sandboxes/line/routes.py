"""The Messaging API endpoints linecap calls, with LINE's auth, errors and limits."""

from __future__ import annotations

import secrets
import uuid
from typing import Any
from urllib.parse import urlparse

from flask import Blueprint, Response, g, jsonify, request

from .config import Channel
from .events import is_user_id
from .responses import (
    AUTH_FAILED,
    RATE_LIMITED,
    error,
    json_object,
    platform,
    state,
)

bp = Blueprint("line_api", __name__)

DEFAULT_FOLLOWERS_LIMIT = 300
MAX_FOLLOWERS_LIMIT = 1000
MAX_ENDPOINT_LENGTH = 500


@bp.before_request
def authenticate() -> Response | None:
    """Bearer token of a configured channel, then the channel's per-second budget."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    channel = state().channel_for_token(token.strip()) if scheme.lower() == "bearer" else None
    if channel is None:
        return error(401, AUTH_FAILED)
    g.line_channel = channel
    if not state().take_rate_slot(channel, _rate_group(request.path)):
        return error(429, RATE_LIMITED)
    return None


def _rate_group(path: str) -> str:
    if path == "/v2/bot/channel/webhook/endpoint":
        return "webhook_endpoint"
    if path == "/v2/bot/channel/webhook/test":
        return "webhook_test"
    return "default"


def _channel() -> Channel:
    return g.line_channel


def _invalid_user_id() -> Response:
    return error(400, "The value for the 'userId' parameter is invalid")


@bp.get("/v2/bot/info")
def bot_info() -> Response:
    ch = _channel()
    return jsonify(
        {
            "userId": ch.bot_user_id,
            "basicId": ch.basic_id,
            "displayName": ch.display_name,
            "chatMode": "bot",
            "markAsReadMode": "auto",
        }
    )


@bp.get("/v2/bot/profile/<user_id>")
def profile(user_id: str) -> Response:
    if not is_user_id(user_id):
        return _invalid_user_id()
    found = state().profile(_channel().channel_id, user_id)
    return jsonify(found) if found is not None else error(404, "Not found")


@bp.get("/v2/bot/followers/ids")
def follower_ids() -> Response:
    ch = _channel()
    if not ch.verified:
        return error(403, "Access to this API is not available for your account")
    raw_limit = request.args.get("limit")
    try:
        limit = DEFAULT_FOLLOWERS_LIMIT if raw_limit in (None, "") else int(raw_limit)
    except ValueError:
        limit = -1
    if not 1 <= limit <= MAX_FOLLOWERS_LIMIT:
        return error(
            400,
            "The value for the 'limit' parameter is invalid",
            [{"message": f"must be between 1 and {MAX_FOLLOWERS_LIMIT}", "property": "limit"}],
        )
    start = request.args.get("start")
    if start:
        cursor = state().take_cursor(ch.channel_id, start)
        if cursor is None:
            return error(400, "The value for the 'start' parameter is invalid")
        ids, offset = cursor
    else:
        ids, offset = state().friend_ids(ch.channel_id), 0
    page: dict[str, Any] = {"userIds": ids[offset : offset + limit]}
    if offset + limit < len(ids):
        page["next"] = state().open_cursor(ch.channel_id, ids, offset + limit)
    return jsonify(page)


@bp.post("/v2/bot/user/<user_id>/linkToken")
def link_token(user_id: str) -> Response:
    if not is_user_id(user_id):
        return _invalid_user_id()
    record = state().issue_link_token(_channel().channel_id, user_id)
    return jsonify({"linkToken": record["linkToken"]})


def _endpoint_problem(value: object) -> str | None:
    if not isinstance(value, str) or not value:
        return "must be specified"
    if len(value) > MAX_ENDPOINT_LENGTH:
        return f"must be at most {MAX_ENDPOINT_LENGTH} characters"
    parsed = urlparse(value)
    # Messaging API reference, Set webhook endpoint URL: "A valid webhook URL ... HTTPS".
    if parsed.scheme != "https" or not parsed.netloc:
        return "must be a valid HTTPS URL"
    return None


def _bad_endpoint(problem: str) -> Response:
    return error(
        400, "The request body has 1 error(s)", [{"message": problem, "property": "endpoint"}]
    )


@bp.put("/v2/bot/channel/webhook/endpoint")
def set_endpoint() -> Response:
    body = json_object() or {}
    problem = _endpoint_problem(body.get("endpoint"))
    if problem:
        return _bad_endpoint(problem)
    state().set_endpoint(_channel().channel_id, body["endpoint"])
    return jsonify({})


@bp.get("/v2/bot/channel/webhook/endpoint")
def get_endpoint() -> Response:
    """`{endpoint, active}` (line-openapi GetWebhookEndpointResponse), 404 when none is set."""
    endpoint = state().endpoint(_channel().channel_id)
    if not endpoint:
        return error(404, "Webhook endpoint not found")
    return jsonify({"endpoint": endpoint, "active": True})


@bp.post("/v2/bot/channel/webhook/test")
def test_endpoint() -> Response:
    body = json_object() or {}
    endpoint = body.get("endpoint")
    if endpoint is not None:
        problem = _endpoint_problem(endpoint)
        if problem:
            return _bad_endpoint(problem)
    else:
        endpoint = state().endpoint(_channel().channel_id)
        if not endpoint:
            return error(404, "Webhook endpoint not found")
    return jsonify(platform().test_endpoint(_channel(), endpoint))


def _push_problem(body: dict[str, Any] | None) -> str | None:
    if body is None:
        return "The request body is not valid JSON"
    if not isinstance(body.get("to"), str) or not body["to"]:
        return "The property 'to' is required"
    messages = body.get("messages")
    if not isinstance(messages, list) or not 1 <= len(messages) <= 5:
        return "The property 'messages' must hold 1 to 5 messages"
    if not all(isinstance(m, dict) and isinstance(m.get("type"), str) for m in messages):
        return "Every message needs a 'type'"
    return None


@bp.post("/v2/bot/message/push")
def push() -> Response:
    body = json_object()
    problem = _push_problem(body)
    if problem or body is None:
        return error(400, problem or "The request body is not valid JSON")
    retry_key = request.headers.get("X-Line-Retry-Key")
    if retry_key is not None:
        try:
            uuid.UUID(retry_key)
        except ValueError:
            return error(400, "The value for the 'X-Line-Retry-Key' header is invalid")
    sent = [
        {"id": str(secrets.randbelow(10**18)), "quoteToken": secrets.token_urlsafe(24)}
        for _ in body["messages"]
    ]
    record = {"requestId": g.line_request_id, "sentMessages": sent}
    channel_id = _channel().channel_id
    if retry_key is not None:
        earlier = state().accept_retry_key(channel_id, retry_key, record)
        if earlier is not None:
            return _conflict(earlier)
    state().log_push(
        {
            "channel": channel_id,
            "to": body["to"],
            "messages": body["messages"],
            "retryKey": retry_key,
            "requestId": g.line_request_id,
        }
    )
    return jsonify({"sentMessages": sent})


def _conflict(earlier: dict[str, Any]) -> Response:
    response = jsonify(
        {"message": "The retry key is already accepted", "sentMessages": earlier["sentMessages"]}
    )
    response.status_code = 409
    response.headers["x-line-accepted-request-id"] = earlier["requestId"]
    return response
