"""Operator endpoints for the dead-letter store: list, show, replay (one or all), purge.

Authenticated with LINECAP_OPS_API_KEYS; the same operations as `linecap dlq …`. Every replay
and purge leaves a log line (what, how many, from where): they change what happens to events.
A replay also goes into the user's history. (Users' histories and the reconciliation:
app/ops_users.py.)
"""

from __future__ import annotations

import logging

from flask import Blueprint, current_app, jsonify, request

from app.api_keys import require_api_key
from workers.registry import UnknownTask
from workers.replay import replay_all, replay_one

log = logging.getLogger("linecap.ops")
bp = Blueprint("ops", __name__, url_prefix="/ops")


MAX_PAGE = 1000
MAX_OFFSET = 10_000_000


class BadQuery(ValueError):
    """A query parameter the caller must change (400 with the message)."""


@bp.errorhandler(BadQuery)
def _bad_query(exc: BadQuery):
    return jsonify({"message": str(exc)}), 400


def _whole_number(name: str, default: int, low: int, high: int) -> int:
    """?name=… as a whole number within [low, high] (ASCII digits only), or BadQuery."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 9) or not low <= int(raw) <= high:
        raise BadQuery(f"{name} must be a whole number from {low} to {high}")
    return int(raw)


@bp.errorhandler(UnknownTask)
def _unknown_task(exc: UnknownTask):
    return jsonify({"message": f"cannot replay: {exc}"}), 409


def _audit(action: str, count: int, event_id: str | None = None) -> None:
    log.info("dead letters %s through the ops API", action, extra={
        "action": action, "count": count, "webhook_event_id": event_id,
        "remote_addr": request.remote_addr})


def _store():
    return current_app.extensions["linecap.dead_letters"]


def _celery():
    return current_app.extensions["linecap.celery"]


def _history():
    return current_app.extensions["linecap.history"]


def _by() -> str:
    return f"ops API ({request.remote_addr})"


@bp.get("/dead-letters")
@require_api_key("ops_api_keys")
def list_dead_letters():
    limit = _whole_number("limit", 100, 1, MAX_PAGE)
    offset = _whole_number("offset", 0, 0, MAX_OFFSET)
    letters = _store().list(limit=limit, offset=offset)
    return jsonify({"count": _store().count(), "dead_letters": [d.to_json() for d in letters]})


@bp.get("/dead-letters/<event_id>")
@require_api_key("ops_api_keys")
def show_dead_letter(event_id: str):
    letter = _store().get(event_id)
    if letter is None:
        return jsonify({"message": "no such dead letter"}), 404
    return jsonify(letter.to_json())


@bp.post("/dead-letters/<event_id>/replay")
@require_api_key("ops_api_keys")
def replay_dead_letter(event_id: str):
    if not replay_one(_store(), _celery(), event_id, _history(), _by()):
        return jsonify({"message": "no such dead letter"}), 404
    _audit("replayed", 1, event_id)
    return jsonify({"replayed": 1})


@bp.post("/dead-letters/replay")
@require_api_key("ops_api_keys")
def replay_dead_letters():
    replayed = replay_all(_store(), _celery(), _history(), _by())
    _audit("replayed", replayed)
    return jsonify({"replayed": replayed})


@bp.delete("/dead-letters/<event_id>")
@require_api_key("ops_api_keys")
def purge_dead_letter(event_id: str):
    if not _store().purge(event_id):
        return jsonify({"message": "no such dead letter"}), 404
    _audit("purged", 1, event_id)
    return jsonify({"purged": 1})


@bp.delete("/dead-letters")
@require_api_key("ops_api_keys")
def purge_dead_letters():
    if request.args.get("confirm") != "yes":
        return jsonify({"message": "add ?confirm=yes to purge every dead letter"}), 400
    purged = _store().purge()
    _audit("purged", purged)
    return jsonify({"purged": purged})
