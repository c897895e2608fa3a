"""/healthz says the process is up; /readyz says it can do its job (Redis answers)."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz():
    try:
        current_app.extensions["linecap.redis"].ping()
    except Exception as exc:  # any failure to reach Redis means not ready
        return jsonify({"status": "unavailable", "redis": type(exc).__name__}), 503
    return jsonify({"status": "ok", "redis": "ok"})
