"""Linking LINE users to existing customers: the account-link flow and a server-to-server API.

Account link (LINE's flow, nonce kept by linecap):
  1. `POST /api/v1/link-tokens` — the brand asks for a link for a LINE user; linecap gets a link
     token from LINE, stores a fresh nonce and returns the page to send the user to.
  2. `GET /link/<nonce>` — the user's browser: off to the brand's login (LINECAP_LINK_LOGIN_URL)
     until the nonce is bound, then on to LINE's account-link page.
  3. `POST /api/v1/link-nonces/<nonce>/bind` — the brand's login/OTP step says who it is.
  4. LINE sends `accountLink`; the worker claims the nonce and queues the link.
Server to server: `POST /api/v1/links` queues the same link task directly.

Every `/api/v1` endpoint needs a key from LINECAP_API_KEYS. Like the webhook, nothing here calls
Capillary: the work happens in the `linking` queue.
"""

from __future__ import annotations

import logging
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
from core.line.client import LineApiClient
from core.link_request import LinkRequest
from core.store.link_nonces import BOUND, CLAIMED, UNKNOWN, USED, LinkNonce, NonceStore
from workers.messages import enqueue_link

log = logging.getLogger("linecap.linking")
bp = Blueprint("linking", __name__)

ACCOUNT_LINK_URL = "https://access.line.me/dialog/bot/accountLink"
_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}</title></head>
<body style="font-family: sans-serif; max-width: 32em; margin: 3em auto; padding: 0 1em">
<h1 style="font-size: 1.4em">{{ title }}</h1><p>{{ text }}</p>
{% if retry %}<form method="get"><button type="submit">I have signed in</button></form>{% endif %}
</body></html>"""


def account_link_url(nonce: LinkNonce) -> str:
    return f"{ACCOUNT_LINK_URL}?{urlencode({'linkToken': nonce.link_token, 'nonce': nonce.nonce})}"


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
        link_id = enqueue_link(current_app.extensions["linecap.celery"], channel.channel_id,
                               request, retry=False)
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
    except TransientError as exc:
        return jsonify({"message": f"LINE is unavailable ({exc})"}), 503
    except LinecapError as exc:
        return jsonify({"message": f"LINE refused the link token request ({exc}); "
                                   "`linecap setup check` shows what to fix"}), 502
    nonce = _nonces().issue(channel.channel_id, user_id, link_token)
    log.info("account link issued", extra={"channel": channel.channel_id, "user_id": user_id})
    return jsonify({"nonce": nonce.nonce,
                    "link_page_url": url_for(".link_page", nonce=nonce.nonce, _external=True),
                    "expires_in": _settings().link_nonce_ttl_seconds}), 201


@bp.post("/api/v1/link-nonces/<nonce>/bind")
@require_api_key("api_keys")
def bind_nonce(nonce: str):
    body = json_body()
    mobile, customer_id = link_target_of(body)
    status = _nonces().bind(nonce, mobile=mobile, customer_id=customer_id, name=name_of(body))
    if status == UNKNOWN:
        return jsonify({"message": "unknown or expired nonce; issue a new link"}), 404
    if status == USED:
        return jsonify({"message": "this nonce was already used by an account link"}), 409
    bound = _nonces().get(nonce)
    if bound is None:  # expired between the two calls
        return jsonify({"message": "unknown or expired nonce; issue a new link"}), 404
    return jsonify({"nonce": nonce, "state": BOUND, "account_link_url": account_link_url(bound)})


@bp.get("/api/v1/link-nonces/<nonce>")
@require_api_key("api_keys")
def show_nonce(nonce: str):
    found = _nonces().get(nonce)
    if found is None:
        return jsonify({"message": "unknown or expired nonce"}), 404
    return jsonify({"nonce": nonce, "state": found.state, "channel": found.channel_id,
                    "line_user_id": found.line_user_id, "outcome": found.outcome})


@bp.get("/link/<nonce>")
def link_page(nonce: str) -> Response:
    """The user's browser: sign in first (the brand binds the nonce), then on to LINE."""
    found = _nonces().get(nonce)
    if found is None:
        return _page(404, "This link has expired",
                     "Go back to the LINE chat and ask for a new link.")
    if found.state == CLAIMED:
        return _page(410, "This link was already used", "Your accounts are being linked.")
    if found.state == BOUND:
        return _no_store(redirect(account_link_url(found), code=302))
    login_url = _settings().link_login_url
    if login_url:
        return _no_store(redirect(_with_query(login_url, nonce=nonce), code=302))
    return _page(200, "Sign in to link your LINE account",
                 "Sign in on our website or app to confirm who you are, then come back to this "
                 "page.", retry=True)


def _page(status: int, title: str, text: str, retry: bool = False) -> Response:
    response = current_app.response_class(
        render_template_string(_PAGE, title=title, text=text, retry=retry), status=status,
        mimetype="text/html")
    return _no_store(response)


def _no_store(response: Response) -> Response:
    """The nonce is in the URL: keep it out of caches and out of Referer headers."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def _with_query(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = urlencode([*parse_qsl(parts.query), *params.items()])
    return urlunsplit(parts._replace(query=query))


def _settings() -> Settings:
    return current_app.config["LINECAP_SETTINGS"]


def _nonces() -> NonceStore:
    return NonceStore(current_app.extensions["linecap.redis"],
                      _settings().link_nonce_ttl_seconds)


def _line_api() -> LineApiClient:
    if "linecap.line_api" not in current_app.extensions:
        current_app.extensions["linecap.line_api"] = LineApiClient(_settings().line_api_base_url)
    return current_app.extensions["linecap.line_api"]
