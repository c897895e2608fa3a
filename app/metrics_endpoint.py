"""GET /metrics for the web: every gunicorn worker's numbers summed, plus Redis state.

Also counts webhook bodies refused as too large: werkzeug raises that 413 from inside
request.get_data, so the webhook view never gets to count it.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, request
from prometheus_client.exposition import choose_encoder
from werkzeug.exceptions import RequestEntityTooLarge

from core.metrics import multiprocess_registry
from workers.queue_metrics import RedisStateCollector

bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
def metrics() -> Response:
    registry = multiprocess_registry(RedisStateCollector(current_app.extensions["linecap.redis"]))
    encoder, content_type = choose_encoder(request.headers.get("Accept"))
    return Response(encoder(registry), content_type=content_type)


@bp.app_errorhandler(RequestEntityTooLarge)
def too_large(exc: RequestEntityTooLarge) -> RequestEntityTooLarge:
    recorder = current_app.extensions.get("linecap.metrics")
    if recorder is not None and request.blueprint == "webhook":
        recorder.webhook_request("too_large")
    return exc
