"""``/sandbox/*``: how tests and the run command play a LINE user (add, block, link).

No auth: these are not LINE APIs but the user's thumb in the LINE app, plus views of the
sandbox's state and logs for assertions.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify

from .config import Channel
from .events import is_user_id
from .platform import ActionRefused
from .responses import error, json_object, platform, state
from .state import UnknownChannel

bp = Blueprint("line_sandbox_controls", __name__, url_prefix="/sandbox")


class _Refused(Exception):
    def __init__(self, response: Response) -> None:
        self.response = response


@bp.errorhandler(_Refused)
def _refused(exc: _Refused) -> Response:
    return exc.response


def _body() -> dict[str, Any]:
    body = json_object()
    if body is None:
        raise _Refused(error(400, "the body must be a JSON object"))
    return body


def _channel(body: dict[str, Any]) -> Channel:
    try:
        return state().channel(body.get("channel_id"))
    except UnknownChannel:
        raise _Refused(error(404, f"unknown channel {body.get('channel_id')!r}")) from None


def _user_id(body: dict[str, Any], required: bool) -> str | None:
    user_id = body.get("user_id")
    if user_id is None and not required:
        return None
    if not is_user_id(user_id):
        raise _Refused(error(400, "user_id must be 'U' followed by 32 lowercase hex characters"))
    return user_id


@bp.post("/users")
def add_user() -> Response:
    body = _body()
    channel = _channel(body)
    user, created = state().add_user(
        channel.channel_id, _user_id(body, required=False), body.get("display_name")
    )
    response = jsonify(user)
    response.status_code = 201 if created else 200
    return response


@bp.post("/follow")
def follow() -> Response:
    body = _body()
    channel = _channel(body)
    try:
        result = platform().follow(
            channel,
            _user_id(body, required=False),
            body.get("display_name"),
            bool(body.get("deliver", True)),
            bool(body.get("redeliver", False)),
        )
    except ActionRefused as exc:
        return error(409, str(exc))
    return jsonify(result)


@bp.post("/unfollow")
def unfollow() -> Response:
    body = _body()
    channel = _channel(body)
    try:
        result = platform().unfollow(
            channel,
            _user_id(body, required=True) or "",
            bool(body.get("deliver", True)),
            bool(body.get("redeliver", False)),
        )
    except ActionRefused as exc:
        return error(409, str(exc))
    return jsonify(result)


@bp.post("/deliver")
def deliver() -> Response:
    body = _body()
    channel = _channel(body)
    events = body.get("events")
    if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
        return error(400, "events must be a list of objects")
    delivery = platform().deliver(
        channel,
        events,
        redelivery=bool(body.get("redelivery")),
        bad_signature=bool(body.get("bad_signature")),
    )
    return jsonify({"delivery": delivery, "count": len(events)})


@bp.post("/account-link")
def account_link() -> Response:
    """The user finishing LINE's account-link page; ``as_user`` is who is logged in to LINE
    on that device (default: the token's user). See Platform.account_link for the rules."""
    body = _body()
    token, nonce = body.get("link_token"), body.get("nonce")
    result = body.get("result", "ok")
    if not isinstance(token, str) or not isinstance(nonce, str) or result not in ("ok", "failed"):
        return error(400, "link_token and nonce are required strings; result is ok or failed")
    as_user = _user_id({"user_id": body.get("as_user")}, required=False)
    return jsonify(platform().account_link(token, nonce, result, as_user,
                                           bool(body.get("deliver", True))))


@bp.post("/webhook-endpoint")
def console_endpoint() -> Response:
    """The endpoint as an operator sets it in the console, at once. Unlike LINE (HTTPS only),
    http on loopback is accepted here, so the fake can deliver to a local receiver."""
    body = _body()
    channel = _channel(body)
    endpoint = body.get("endpoint")
    if not isinstance(endpoint, str) or not endpoint.startswith(("https://", "http://127.0.0.1",
                                                                 "http://localhost")):
        return error(400, "endpoint must be an https URL, or http on loopback")
    state().set_endpoint(channel.channel_id, endpoint, at_once=True)
    return jsonify({"channel_id": channel.channel_id, "endpoint": endpoint})


@bp.get("/requests")
def requests_log() -> Response:
    return jsonify({"requests": state().requests()})


@bp.get("/deliveries")
def deliveries_log() -> Response:
    return jsonify({"deliveries": state().deliveries()})


@bp.get("/state")
def snapshot() -> Response:
    return jsonify(state().snapshot())


@bp.post("/reset")
def reset() -> Response:
    state().reset()
    return jsonify({})
