"""POST /webhooks/line/<channel_id>: verify, check the shape, enqueue, answer 200.

Nothing else happens in the request (no Capillary or LINE call), so LINE gets its answer in
milliseconds. Events linecap does not act on are acknowledged, logged and not enqueued.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from app.publisher import BrokerUnavailable
from config import LineChannel, Settings
from core.line import events, signature

log = logging.getLogger("linecap.webhook")
bp = Blueprint("webhook", __name__)


def _answer(status: int, message: str | None = None, outcome: str = "") -> Response:
    body = {} if message is None else {"message": message}
    response = jsonify(body)
    response.status_code = status
    metrics = current_app.extensions.get("linecap.metrics")
    if metrics is not None:
        metrics.webhook_request(outcome or str(status))
    return response


@bp.post("/webhooks/line")
def receive_default() -> Response:
    settings: Settings = current_app.config["LINECAP_SETTINGS"]
    channel = settings.single_channel
    if channel is None:
        return _answer(404, "several channels are configured: use /webhooks/line/<channel_id>",
                       "unknown_channel")
    return _receive(channel)


@bp.post("/webhooks/line/<channel_id>")
def receive(channel_id: str) -> Response:
    settings: Settings = current_app.config["LINECAP_SETTINGS"]
    channel = settings.channel(channel_id)
    if channel is None:
        return _answer(404, "unknown channel", "unknown_channel")
    return _receive(channel)


def _receive(channel: LineChannel) -> Response:
    body = request.get_data(cache=False)  # raises 413 past MAX_CONTENT_LENGTH
    if not signature.is_valid(body, request.headers.get("x-line-signature"),
                              channel.channel_secret):
        log.warning("webhook refused: bad or missing signature",
                    extra={"channel": channel.channel_id})
        return _answer(401, "invalid signature", "bad_signature")
    batch, problem = _parse(body)
    if problem:
        log.warning("webhook refused: %s", problem, extra={"channel": channel.channel_id})
        return _answer(400, problem, "malformed")
    wanted = [events.without_reply_token(e) for e in batch
              if events.event_type(e) in events.HANDLED_EVENT_TYPES]
    for event in batch:
        if events.event_type(event) not in events.HANDLED_EVENT_TYPES:
            log.info("event acknowledged, not handled", extra={
                "channel": channel.channel_id, "event_type": events.event_type(event),
                "webhook_event_id": events.event_id(event)})
    try:
        current_app.extensions["linecap.publisher"].publish(channel.channel_id, wanted)
    except BrokerUnavailable as exc:
        log.error("broker unavailable; answering 503 so LINE redelivers",
                  extra={"channel": channel.channel_id, "error": str(exc)})
        return _answer(503, "temporarily unavailable", "broker_unavailable")
    for event in wanted:
        log.info("event enqueued", extra={
            "channel": channel.channel_id, "event_type": events.event_type(event),
            "webhook_event_id": events.event_id(event)})
    metrics = current_app.extensions.get("linecap.metrics")
    if metrics is not None:
        metrics.events_received(channel.channel_id, batch)
    return _answer(200, outcome="accepted")


def _parse(body: bytes) -> tuple[list[dict[str, Any]], str | None]:
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return [], "body is not JSON"
    if not isinstance(document, dict) or not isinstance(document.get("events"), list):
        return [], "body must be a JSON object with an 'events' list"
    if not all(isinstance(e, dict) for e in document["events"]):
        return [], "every event must be a JSON object"
    return document["events"], None
