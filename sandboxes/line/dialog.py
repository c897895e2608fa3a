"""LINE's account-link page, as a browser meets it (``access.line.me/dialog/bot/accountLink``).

The brand redirects the browser that logged in to ``/dialog/bot/accountLink?linkToken=…&nonce=…``
(linking-accounts, "Redirect the user to the account-link endpoint"); LINE then checks that the
person on the page is the user the link token was issued for, and sends the accountLink event.
On LINE that person is whoever is logged in to the LINE app; here it is the browser's
``line_sandbox_user`` cookie, set by ``/sandbox/browser-login?user_id=U…`` (a test's stand-in
for logging in to LINE on the device). The rules are Platform.account_link's.
"""

from __future__ import annotations

from flask import Blueprint, Response, render_template_string, request

from .events import is_user_id
from .responses import platform, state

bp = Blueprint("line_sandbox_dialog", __name__)

COOKIE = "line_sandbox_user"
_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>LINE</title></head>
<body><h1 id="title">{{ title }}</h1><p id="text">{{ text }}</p>
{% if token %}<form method="post" action="/dialog/bot/accountLink">
<input type="hidden" name="linkToken" value="{{ token }}">
<input type="hidden" name="nonce" value="{{ nonce }}">
<button id="link" type="submit">Link accounts</button></form>{% endif %}
</body></html>"""


def _page(status: int, title: str, text: str, token: str = "", nonce: str = "") -> Response:
    html = render_template_string(_PAGE, title=title, text=text, token=token, nonce=nonce)
    return Response(html, status=status, mimetype="text/html")


@bp.get("/sandbox/browser-login")
def browser_login() -> Response:
    user_id = request.args.get("user_id", "")
    if not is_user_id(user_id):
        return _page(400, "Not logged in", "user_id must be a LINE user id")
    response = _page(200, "Logged in to LINE", f"You are {user_id} on this device.")
    response.set_cookie(COOKIE, user_id, httponly=True, samesite="Lax")
    return response


@bp.get("/dialog/bot/accountLink")
def confirm() -> Response:
    token, nonce = request.args.get("linkToken", ""), request.args.get("nonce", "")
    # No event for an expired or used token, only an error (Messaging API reference,
    # "Account link event").
    problem = state().link_token_problem(token)
    if problem:
        return _page(400, "This link cannot be used", f"The link token is {problem}.")
    if not nonce:
        return _page(400, "This link cannot be used", "The nonce is missing.")
    if not is_user_id(request.cookies.get(COOKIE)):
        return _page(401, "Log in to LINE", "Open this page in LINE, logged in.")
    return _page(200, "Link your LINE account?",
                 "The service will know your LINE account.", token, nonce)


@bp.post("/dialog/bot/accountLink")
def finish() -> Response:
    user = request.cookies.get(COOKIE)
    if not is_user_id(user):
        return _page(401, "Log in to LINE", "Open this page in LINE, logged in.")
    out = platform().account_link(request.form.get("linkToken", ""),
                                  request.form.get("nonce", ""), as_user=user)
    if out["event"] is None:
        return _page(400, "This link cannot be used", out["page"])
    if out["page"] == "linked":
        return _page(200, "Accounts linked", "You can go back to the chat.")
    return _page(200, "Linking failed", "The accounts were not linked.")
