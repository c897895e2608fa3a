"""GET /metrics for the web: every gunicorn worker's numbers summed, plus Redis state (queues,
dead letters, each Capillary rate budget's use, each channel's last reconciliation).

Behind `Authorization: Bearer <key>` with a key from LINECAP_METRICS_KEYS (off while none is
set): on Heroku the web's port is public, and the numbers name channels and show queue depths,
dead letters and Capillary traffic. Prometheus sends the key with `authorization:` in its
scrape config (README, "Operating").

Also counts webhook bodies refused as too large: werkzeug raises that 413 from inside
request.get_data, so the webhook view never gets to count it.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, request
from prometheus_client.exposition import choose_encoder
from werkzeug.exceptions import RequestEntityTooLarge

from app.api_keys import require_api_key
from core.metrics import multiprocess_registry
from core.store.rate_budget import SharedRateLimiter
from workers.queue_metrics import RedisStateCollector
from workers.reconciliation_metrics import ReconciliationCollector

bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
@require_api_key("metrics_keys")
def metrics() -> Response:
    settings = current_app.config["LINECAP_SETTINGS"]
    client = current_app.extensions["linecap.redis"]
    budgets = SharedRateLimiter(client, settings.capillary_rate_limit_rpm,
                                group_limits=settings.group_rate_limits).budgets()
    registry = multiprocess_registry(
        RedisStateCollector(client, dead_letter_ttl=settings.dead_letter_ttl_seconds,
                            budgets=budgets),
        ReconciliationCollector(client, [c.channel_id for c in settings.channels]))
    encoder, content_type = choose_encoder(request.headers.get("Accept"))
    return Response(encoder(registry), content_type=content_type)


@bp.app_errorhandler(RequestEntityTooLarge)
def too_large(exc: RequestEntityTooLarge) -> RequestEntityTooLarge:
    recorder = current_app.extensions.get("linecap.metrics")
    if recorder is not None and request.blueprint == "webhook":
        recorder.webhook_request("too_large")
    return exc
