"""Builds the Flask app: both blueprints, request ids, the request log and JSON errors."""

from __future__ import annotations

import time
import uuid

from flask import Flask, Response, g, jsonify, request
from werkzeug.exceptions import HTTPException

from . import controls, dialog, routes
from .config import LineSandboxConfig
from .platform import Platform
from .responses import EXTENSION_KEY, error
from .state import SandboxState

_UNLOGGED_PREFIXES = ("/sandbox/", "/healthz", "/dialog/")


def create_line_sandbox_app(config: LineSandboxConfig | None = None) -> Flask:
    """A fresh fake LINE platform; with no config, channels come from LINE_CHANNELS."""
    config = config if config is not None else LineSandboxConfig.from_env()
    state = SandboxState(config)
    app = Flask("linecap_line_sandbox")
    app.extensions[EXTENSION_KEY] = {"state": state, "platform": Platform(state)}
    app.register_blueprint(routes.bp)
    app.register_blueprint(controls.bp)
    app.register_blueprint(dialog.bp)

    @app.before_request
    def _assign_request_id() -> None:
        g.line_request_id = str(uuid.uuid4())

    @app.after_request
    def _stamp_and_log(response: Response) -> Response:
        request_id = getattr(g, "line_request_id", None) or str(uuid.uuid4())
        response.headers["X-Line-Request-Id"] = request_id
        if not request.path.startswith(_UNLOGGED_PREFIXES):
            channel = getattr(g, "line_channel", None)
            state.log_request(
                {
                    "ts": time.time(),
                    "method": request.method,
                    "path": request.path,
                    "query": request.query_string.decode("latin-1"),
                    "channel": channel.channel_id if channel else None,
                    "status": response.status_code,
                    "requestId": request_id,
                }
            )
        return response

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        message = "Not found" if exc.code == 404 else (exc.description or exc.name)
        return error(exc.code or 500, message)

    @app.get("/healthz")
    def _healthz() -> Response:
        return jsonify({"status": "ok", "channels": len(state.channels)})

    return app
