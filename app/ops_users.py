"""Operator endpoints that answer "why is this customer (not) opted in?": a user's history
and the reconciliation with LINE's follower list.

GET /ops/users/<channel>/<user>: what linecap received from the user, how each event ended,
the Capillary calls each made, replays and reconciliation findings, oldest first, with the
one-line explanation `linecap check` prints. GET /ops/reconciliation: each channel's interval,
last run's summary and the run in progress. Authenticated with LINECAP_OPS_API_KEYS; each
history read is logged (who asked, from where): it shows personal data.
"""

from __future__ import annotations

import logging

from flask import Blueprint, current_app, jsonify, request

from app.api_keys import require_api_key
from config import Settings
from core.history_view import UserHistory
from core.store.reconciliation import ReconciliationStore
from core.store.state import StateStore
from core.validation import is_line_user_id

log = logging.getLogger("linecap.ops")
bp = Blueprint("ops_users", __name__, url_prefix="/ops")


def _settings() -> Settings:
    return current_app.config["LINECAP_SETTINGS"]


def _redis():
    return current_app.extensions["linecap.redis"]


@bp.get("/users/<channel_id>/<user_id>")
@require_api_key("ops_api_keys")
def user_history(channel_id: str, user_id: str):
    settings = _settings()
    if settings.channel(channel_id) is None:
        return jsonify({"message": "unknown channel"}), 404
    if not is_line_user_id(user_id):
        return jsonify({"message": "user must be a LINE user id: U followed by 32 lowercase "
                                   "hex characters"}), 400
    view = UserHistory.read(current_app.extensions["linecap.history"],
                            StateStore.from_settings(_redis(), settings), channel_id, user_id)
    log.info("user history read through the ops API", extra={
        "channel": channel_id, "user_id": user_id, "entries": len(view.entries),
        "remote_addr": request.remote_addr})
    return jsonify(view.to_json())


@bp.get("/reconciliation")
@require_api_key("ops_api_keys")
def reconciliation():
    settings = _settings()
    store = ReconciliationStore(_redis(), settings.history_ttl_seconds)
    channels = {channel.channel_id: store.view(channel.channel_id,
                                               settings.reconcile_interval(channel.channel_id))
                for channel in settings.channels}
    return jsonify({"repair_missing": settings.reconcile_repair_missing, "channels": channels})
