"""POST /webhooks/line/<channel_id>: verify, check the shape, enqueue, answer 200.

Nothing else happens in the request (no Capillary or LINE call), so LINE gets its answer in
milliseconds. Events linecap does not act on are acknowledged, logged and not enqueued.

What a request gets:
- 413 when the body is over the limit, however it is sent (chunked too); nothing is verified.
- 401 when the signature matches neither the channel's secret nor its previous one.
- 400, with the reason, when the verified body is not a JSON object with an `events` list
  (not JSON, NaN or Infinity, nested too deep, more events than LINECAP_WEBHOOK_MAX_EVENTS).
- 200 otherwise. A follow, unfollow or accountLink event whose fields are wrong (a userId that
  is not a LINE id, a timestamp that is not milliseconds of the past) is dropped and logged,
  and the rest of the request is queued: LINE would redeliver a refused request unchanged, so
  a 4xx would only cost the other users' events in it, and nothing a bad event says is used.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from app.bodies import BadJson, parse_json, read_body
from app.publisher import BrokerUnavailable
from config import LineChannel, Settings
from core.line import events, signature

log = logging.getLogger("linecap.webhook")
bp = Blueprint("webhook", __name__)

# LINE's events nest a few levels (events[].message.emojis[]…); 32 leaves room for new ones.
MAX_JSON_DEPTH = 32


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
    settings: Settings = current_app.config["LINECAP_SETTINGS"]
    body = read_body(settings.webhook_max_body_bytes)  # 413 past the limit, chunked or not
    matched = signature.matching_secret(body, request.headers.get("x-line-signature"),
                                        channel.channel_secrets)
    if matched is None:
        log.warning("webhook refused: bad or missing signature",
                    extra={"channel": channel.channel_id})
        return _answer(401, "invalid signature", "bad_signature")
    if matched > 0:
        log.info("webhook signed with the previous channel secret; remove it from the "
                 "configuration once LINE no longer uses it", extra={"channel": channel.channel_id})
    batch, problem = _parse(body, settings.webhook_max_events)
    if problem:
        log.warning("webhook refused: %s", problem, extra={"channel": channel.channel_id})
        return _answer(400, problem, "malformed")
    wanted, received = _sort(channel, batch)
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
        metrics.events_received(channel.channel_id, received)
    return _answer(200, outcome="accepted")


def _sort(channel: LineChannel, batch: list[dict[str, Any]]
          ) -> tuple[list[dict[str, Any]], list[tuple[dict[str, Any], bool]]]:
    """(the events to queue, in their queued form; every event with whether it is queued)."""
    now_ms = int(time.time() * 1000)
    wanted: list[dict[str, Any]] = []
    received: list[tuple[dict[str, Any], bool]] = []
    for event in batch:
        kind = events.event_type(event)
        fields = {"channel": channel.channel_id, "event_type": kind[:32],
                  "webhook_event_id": events.logged_id(event)}
        if kind not in events.HANDLED_EVENT_TYPES:
            log.info("event acknowledged, not handled", extra=fields)
            received.append((event, False))
            continue
        problem = events.event_problem(event, now_ms)
        if problem:
            log.warning("event dropped: %s", problem, extra=fields)
            received.append((event, False))
            continue
        wanted.append(events.for_queue(event))
        received.append((event, True))
    return wanted, received


def _parse(body: bytes, max_events: int) -> tuple[list[dict[str, Any]], str | None]:
    try:
        document = parse_json(body, MAX_JSON_DEPTH)
    except BadJson as exc:
        return [], str(exc)
    if not isinstance(document, dict) or not isinstance(document.get("events"), list):
        return [], "body must be a JSON object with an 'events' list"
    batch = document["events"]
    if not all(isinstance(e, dict) for e in batch):
        return [], "every event must be a JSON object"
    if len(batch) > max_events:
        return [], (f"{len(batch)} events in one request; at most {max_events} are accepted "
                    "(LINECAP_WEBHOOK_MAX_EVENTS)")
    return batch, None
