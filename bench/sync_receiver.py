"""Baseline for part 1: the LINE SDK samples' pattern, which calls the CRM inside the request.

Verifies the signature, then for every follow/unfollow looks the customer up in Capillary and
sets the subscription before answering. Run under the same gunicorn settings as linecap
(`bench.sync_receiver:create_app()`), against the sandbox with 150 ms latency.
"""

from __future__ import annotations

import json
import os
import threading

import requests
from flask import Flask, Response, request

from core.line.signature import is_valid
from sandboxes.capillary.auth import basic_header


def create_app() -> Flask:
    channels = {c["channel_id"]: c for c in json.loads(os.environ["LINE_CHANNELS"])}
    base_url = os.environ["CAPILLARY_BASE_URL"].rstrip("/")
    auth = basic_header(os.environ["CAPILLARY_USERNAME"], os.environ["CAPILLARY_PASSWORD"])
    local = threading.local()
    app = Flask("bench_sync_receiver")

    def session() -> requests.Session:
        if not hasattr(local, "session"):
            local.session = requests.Session()
            local.session.headers.update({"Authorization": auth, "Accept": "application/json"})
        return local.session

    def apply(channel: dict, event: dict) -> None:
        user_id = event["source"]["userId"]
        found = session().get(base_url + "/v2/customers/lookup/customerDetails", params={
            "source": "LINE", "identifierName": "line", "identifierValue": user_id,
            "accountId": channel["source_account_id"]}, timeout=10)
        customer_id = found.json().get("id")
        if customer_id is None:
            return
        kind = "OPTIN" if event["type"] == "follow" else "OPTOUT"
        session().post(f"{base_url}/v2/customers/{customer_id}/subscriptions", json={
            "communicationId": -1, "campaignId": -1, "reason": "LINE " + event["type"],
            "scope": {"scope": "USER", "subScope": "NONE"},
            "subscriptions": [{"channel": "LINE", "priority": "BULK", "type": kind,
                               "sourceName": "LINE",
                               "accountId": channel["source_account_id"]}]}, timeout=10)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/webhooks/line/<channel_id>")
    def receive(channel_id: str) -> Response | tuple[dict, int]:
        channel = channels.get(channel_id)
        if channel is None:
            return {"message": "unknown channel"}, 404
        body = request.get_data(cache=False)
        if not is_valid(body, request.headers.get("x-line-signature"),
                        channel["channel_secret"]):
            return {"message": "invalid signature"}, 401
        for event in json.loads(body)["events"]:
            if event.get("type") in ("follow", "unfollow"):
                apply(channel, event)
        return Response("{}", 200, mimetype="application/json")

    return app
