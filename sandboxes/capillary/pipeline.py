"""Per-call pipeline for the Capillary API paths: auth → rate limit → faults → latency → log.

Runs as Flask before/after hooks so that every API call — even a 401, a 429 or a path
that does not exist — lands in the call log with the status the client really saw.
"""

from __future__ import annotations

import re
import time
from typing import Any

from flask import Flask, Response, g, jsonify, request
from werkzeug.exceptions import HTTPException

from .errors import ApiError, error_body
from .state import get_state

API_PREFIXES = ("/v2/", "/v3/")
TOKEN_PATH = "/v3/oauth/token/generate"
_RULE_ARG = re.compile(r"<(?:[^<>:]+:)?([^<>]+)>")
_TRANSPORT_MESSAGES = {401: "Invalid credentials", 429: "Rate limit exceeded"}


def is_api_path(path: str) -> bool:
    """Paths that imitate Capillary (everything else is sandbox control)."""
    return path.startswith(API_PREFIXES)


def api_group(method: str, path: str) -> str:
    """The API group a call's budget is counted in (sandboxes.capillary.org.API_GROUPS)."""
    if path.endswith("/changeIdentifier"):
        return "identifiers"
    if "/subscriptions" in path:
        return "subscriptions"
    if path == "/v2/customers/bulk":
        return "bulk"
    if method == "POST" and path == "/v2/customers":
        return "add"
    return "lookup"


def transport_error(status: int, message: str = "", retry_after: int | None = None) -> Response:
    """401 / 429 / 5xx answer with the bare ``errors`` envelope."""
    text = _TRANSPORT_MESSAGES.get(status) or message or "Injected fault"
    response = jsonify(error_body(status, text))
    response.status_code = status
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


def _before() -> Response | None:
    if not is_api_path(request.path):
        return None
    state = get_state()
    config = state.config
    g.cap_ts = state.clock()
    g.cap_metered = False
    g.cap_after_write = None
    if request.path != TOKEN_PATH and not state.auth.check(request.headers, config):
        return transport_error(401)
    decision = state.faults.admit(
        config, g.cap_ts, request.method, request.path, metered=request.path != TOKEN_PATH,
        group=api_group(request.method, request.path),
    )
    g.cap_metered = decision.metered
    if decision.reject_status is not None:
        return transport_error(decision.reject_status, decision.message, decision.retry_after)
    if decision.after_write_status is not None:
        g.cap_after_write = (decision.after_write_status, decision.retry_after)
    if decision.sleep_ms:
        time.sleep(decision.sleep_ms / 1000)
    return None


def _logged_body() -> Any:
    body = request.get_json(silent=True)
    if body is None:
        text = request.get_data(as_text=True)
        return text[:2000] or None
    if request.path == TOKEN_PATH and isinstance(body, dict) and "secret" in body:
        body = {**body, "secret": "***"}
    return body


def _source_of(body: Any) -> str | None:
    if request.args.get("source"):
        return request.args["source"]
    if not isinstance(body, dict):
        return None
    for key, field in (("profiles", "source"), ("subscriptions", "sourceName")):
        items = body.get(key)
        if isinstance(items, list) and items and isinstance(items[0], dict):
            value = items[0].get(field)
            if isinstance(value, str):
                return value
    return None


def _after(response: Response) -> Response:
    if not is_api_path(request.path) or "cap_ts" not in g:
        return response
    if g.cap_after_write is not None:
        status, retry_after = g.cap_after_write
        response = transport_error(status, "Injected fault after write", retry_after)
    rule = request.url_rule.rule if request.url_rule is not None else request.path
    body = _logged_body()
    get_state().calls.append(
        {
            "ts": g.cap_ts,
            "method": request.method,
            "path": request.path,
            "route": _RULE_ARG.sub(r"{\1}", rule),
            "query": request.args.to_dict(),
            "status": response.status_code,
            "source": _source_of(body),
            "body": body,
            "metered": g.cap_metered,
        }
    )
    return response


def _api_error(error: ApiError) -> tuple[Response, int]:
    status = error.http_status or get_state().config.not_found_status
    return jsonify(error_body(error.code, error.message, with_warnings=True)), status


def _http_error(error: HTTPException) -> tuple[Response, int]:
    status = error.code or 500
    return jsonify(error_body(status, error.name, with_warnings=True)), status


def install_pipeline(app: Flask) -> None:
    """Attach the hooks and JSON error handlers to ``app``."""
    app.before_request(_before)
    app.after_request(_after)
    app.register_error_handler(ApiError, _api_error)
    app.register_error_handler(HTTPException, _http_error)
