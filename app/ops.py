"""Operator endpoints for the dead-letter store: list, show, replay (one or all), purge.

Authenticated with LINECAP_OPS_API_KEYS; the same operations as `linecap dlq …`.
"""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request

from app.api_keys import require_api_key
from workers.replay import replay_all, replay_one

bp = Blueprint("ops", __name__, url_prefix="/ops")


def _store():
    return current_app.extensions["linecap.dead_letters"]


def _celery():
    return current_app.extensions["linecap.celery"]


@bp.get("/dead-letters")
@require_api_key("ops_api_keys")
def list_dead_letters():
    limit = min(int(request.args.get("limit", 100)), 1000)
    offset = int(request.args.get("offset", 0))
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
    if not replay_one(_store(), _celery(), event_id):
        return jsonify({"message": "no such dead letter"}), 404
    return jsonify({"replayed": 1})


@bp.post("/dead-letters/replay")
@require_api_key("ops_api_keys")
def replay_dead_letters():
    return jsonify({"replayed": replay_all(_store(), _celery())})


@bp.delete("/dead-letters/<event_id>")
@require_api_key("ops_api_keys")
def purge_dead_letter(event_id: str):
    if not _store().purge(event_id):
        return jsonify({"message": "no such dead letter"}), 404
    return jsonify({"purged": 1})


@bp.delete("/dead-letters")
@require_api_key("ops_api_keys")
def purge_dead_letters():
    if request.args.get("confirm") != "yes":
        return jsonify({"message": "add ?confirm=yes to purge every dead letter"}), 400
    return jsonify({"purged": _store().purge()})
