"""Linking LINE users to existing customers: the account-link flow and a server-to-server API.

Account link, in LINE's documented sequence (docs/LINKING.md):
  1. `POST /api/v1/link-tokens` — the brand asks to link a LINE user; linecap gets a link token
     from LINE and returns the link page to send the user (a session id, no nonce in it).
  2. `GET /link/<session>` — the user's browser: on to the brand's login (LINECAP_LINK_LOGIN_URL),
     or a page saying how it ended. It never sends anyone to LINE: the URL can be forwarded.
  3. `POST /api/v1/link-sessions/<session>/bind` — after the login, the brand's server says who
     the person is; linecap makes the nonce now and returns LINE's account-link URL to that
     server only, which redirects the browser that logged in straight there.
  4. LINE sends `accountLink`; the worker claims the session (ok) or burns it (failed).
Server to server: `POST /api/v1/links` queues the same link task directly.

Every `/api/v1` endpoint needs a key from LINECAP_API_KEYS. Like the webhook, nothing here calls
Capillary: the work happens in the `linking` queue.
"""

from __future__ import annotations

import logging
import time
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis
from flask import (
    Blueprint,
    Response,
    current_app,
    jsonify,
    redirect,
    render_template_string,
    url_for,
)

from app.api_keys import require_api_key
from app.link_input import (
    BadInput,
    channel_of,
    json_body,
    line_user_id_of,
    link_target_of,
    mobile_of,
    name_of,
)
from config import Settings
from core.errors import LinecapError, TransientError
from core.line.client import LINK_TOKEN_SECONDS, LineApiClient
from core.link_request import LinkRequest
from core.store.link_sessions import BOUND, CLAIMED, FAILED, LinkSession, LinkSessionStore
from workers.messages import enqueue_link
from workers.outcomes import Outcome

log = logging.getLogger("linecap.linking")
bp = Blueprint("linking", __name__)

ACCOUNT_LINK_PATH = "/dialog/bot/accountLink"
# A bind re-issues LINE's link token when less than this is left of its 10 minutes, so the
# person who just logged in always has time to finish on LINE's page.
MIN_TOKEN_SECONDS_AT_BIND = 300
_LINKED = {Outcome.LINKED, Outcome.ALREADY_LINKED}
_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}</title></head>
<body style="font-family: sans-serif; max-width: 32em; margin: 3em auto; padding: 0 1em">
<h1 id="title" style="font-size: 1.4em">{{ title }}</h1><p id="text">{{ text }}</p>
</body></html>"""


@bp.errorhandler(BadInput)
def _bad_input(exc: BadInput) -> tuple[Response, int]:
    return jsonify(exc.to_json()), exc.status


@bp.errorhandler(redis.RedisError)
def _redis_down(exc: redis.RedisError) -> tuple[Response, int]:
    log.error("Redis unavailable for linking", extra={"error": type(exc).__name__})
    return jsonify({"message": "temporarily unavailable"}), 503


@bp.post("/api/v1/links")
@require_api_key("api_keys")
def create_link():
    body = json_body()
    channel = channel_of(body, _settings())
    request = LinkRequest(line_user_id_of(body), mobile=mobile_of(body), name=name_of(body))
    try:
        link_id = enqueue_link(current_app.extensions["linecap.celery"], channel, request,
                               retry=False)
    except TransientError as exc:
        log.error("broker unavailable; link not queued", extra={"error": str(exc)})
        return jsonify({"message": "temporarily unavailable"}), 503
    log.info("link queued", extra={"channel": channel.channel_id, "link_id": link_id,
                                   "user_id": request.line_user_id})
    return jsonify({"link_id": link_id, "status": "queued"}), 202


@bp.post("/api/v1/link-tokens")
@require_api_key("api_keys")
def create_link_token():
    body = json_body()
    channel = channel_of(body, _settings())
    user_id = line_user_id_of(body)
    try:
        link_token = _line_api().issue_link_token(channel, user_id)
    except LinecapError as exc:
        return _line_refused(exc)
    session = _sessions().issue(channel.channel_id, user_id, link_token,
                                _display_name(channel, user_id))
    log.info("account link issued", extra={"channel": channel.channel_id, "user_id": user_id})
    return jsonify({"session": session.session_id,
                    "link_page_url": url_for(".link_page", session=session.session_id,
                                             _external=True),
                    "expires_in": _settings().link_nonce_ttl_seconds}), 201


@bp.post("/api/v1/link-sessions/<session>/bind")
@require_api_key("api_keys")
def bind_session(session: str):
    body = json_body()
    mobile, customer_id = link_target_of(body)
    name = name_of(body)
    found = _sessions().get(session)
    refusal = _refusal(found)
    if refusal is not None:
        return refusal
    assert found is not None
    new_token = None
    token_left = found.token_issued_at + LINK_TOKEN_SECONDS - time.time()
    if token_left < MIN_TOKEN_SECONDS_AT_BIND:
        channel = _settings().channel(found.channel_id)
        if channel is None:
            return jsonify({"message": f"channel {found.channel_id} is no longer configured"}), 409
        try:
            new_token = _line_api().issue_link_token(channel, found.line_user_id)
        except LinecapError as exc:
            return _line_refused(exc)
        token_left = LINK_TOKEN_SECONDS
    binding = _sessions().bind(session, mobile=mobile, customer_id=customer_id, name=name,
                               new_link_token=new_token)
    bound = _sessions().get(session)
    if binding.status != BOUND or binding.nonce is None or bound is None:
        return _refusal(bound) or _gone()
    url = _account_link_url(bound.link_token, binding.nonce)
    log.info("account link bound; the brand sends the user to LINE",
             extra={"channel": bound.channel_id, "user_id": bound.line_user_id})
    return jsonify({"session": session, "state": BOUND, "account_link_url": url,
                    "expires_in": int(token_left), "line_user_id": bound.line_user_id,
                    "line_display_name": bound.display_name})


@bp.get("/api/v1/link-sessions/<session>")
@require_api_key("api_keys")
def show_session(session: str):
    found = _sessions().get(session)
    if found is None:
        return _gone()
    return jsonify({"session": session, "state": found.state, "channel": found.channel_id,
                    "line_user_id": found.line_user_id,
                    "line_display_name": found.display_name, "outcome": found.outcome})


@bp.get("/link/<session>")
def link_page(session: str) -> Response:
    """The user's browser: on to the brand's login, or how the link ended. Never to LINE."""
    found = _sessions().get(session)
    if found is None:
        return _page(404, "This link has expired",
                     "Go back to the LINE chat and ask for a new link.")
    if found.state == CLAIMED:
        text = ("Your LINE account is linked." if found.outcome in _LINKED
                else "Your accounts are being linked.")
        return _page(410, "This link was already used", text)
    if found.state == FAILED:
        return _page(410, "Linking did not complete",
                     "LINE could not link the accounts. Go back to the LINE chat and ask for "
                     "a new link.")
    login_url = _settings().link_login_url
    if login_url:
        return _no_store(redirect(_with_query(login_url, session=session), code=302))
    return _page(200, "Sign in to link your LINE account",
                 "Sign in on our website or app to confirm who you are; it then takes you on "
                 "to LINE.")


def _refusal(found: LinkSession | None) -> tuple[Response, int] | None:
    if found is None:
        return _gone()
    if found.state == CLAIMED:
        return jsonify({"message": "this link was already used by an account link"}), 409
    if found.state == FAILED:
        return jsonify({"message": "this link failed on LINE; issue a new one"}), 409
    return None


def _gone() -> tuple[Response, int]:
    return jsonify({"message": "unknown or expired link session; issue a new link"}), 404


def _line_refused(exc: LinecapError) -> tuple[Response, int]:
    if isinstance(exc, TransientError):
        return jsonify({"message": f"LINE is unavailable ({exc})"}), 503
    return jsonify({"message": f"LINE refused the link token request ({exc}); "
                               "`linecap setup check` shows what to fix"}), 502


def _display_name(channel, user_id: str) -> str | None:
    """The LINE display name, for the brand's page to show whose account is being linked; a
    nicety, so a LINE failure here costs nothing but the name."""
    try:
        profile = _line_api().profile(channel, user_id)
    except LinecapError:
        return None
    name = profile.get("displayName") if profile else None
    return name if isinstance(name, str) else None


def _account_link_url(link_token: str, nonce: str) -> str:
    query = urlencode({"linkToken": link_token, "nonce": nonce})
    return f"{_settings().line_access_base_url}{ACCOUNT_LINK_PATH}?{query}"


def _page(status: int, title: str, text: str) -> Response:
    response = current_app.response_class(
        render_template_string(_PAGE, title=title, text=text), status=status,
        mimetype="text/html")
    return _no_store(response)


def _no_store(response: Response) -> Response:
    """The session is in the URL: keep it out of caches and out of Referer headers."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def _with_query(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = urlencode([*parse_qsl(parts.query), *params.items()])
    return urlunsplit(parts._replace(query=query))


def _settings() -> Settings:
    return current_app.config["LINECAP_SETTINGS"]


def _sessions() -> LinkSessionStore:
    return LinkSessionStore(current_app.extensions["linecap.redis"],
                            _settings().link_nonce_ttl_seconds)


def _line_api() -> LineApiClient:
    if "linecap.line_api" not in current_app.extensions:
        current_app.extensions["linecap.line_api"] = LineApiClient(_settings().line_api_base_url)
    return current_app.extensions["linecap.line_api"]
