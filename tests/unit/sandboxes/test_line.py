"""The fake LINE platform: API shapes, auth and limits, and signed webhook delivery."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import socket
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from sandboxes.line import LineSandboxConfig, create_line_sandbox_app, sign_body
from sandboxes.line.events import (
    make_account_link_event,
    make_follow_event,
    make_unfollow_event,
    new_user_id,
    new_webhook_event_id,
    webhook_body,
)

ROOT = Path(__file__).resolve().parents[3]
SECRET = "0123456789abcdef0123456789abcdef"
TOKEN = "sandbox-token-main"
CHANNEL = {
    "name": "main",
    "channel_id": "1650000001",
    "channel_secret": SECRET,
    "access_token": TOKEN,
    "source_account_id": "line-account-1",
}
UNVERIFIED = {
    "name": "small",
    "channel_id": "1650000002",
    "channel_secret": "fedcba9876543210fedcba9876543210",
    "access_token": "sandbox-token-small",
    "source_account_id": "line-account-2",
    "verified": False,
}
LIMITED = {
    "name": "limited",
    "channel_id": "1650000003",
    "channel_secret": "limited-secret",
    "access_token": "sandbox-token-limited",
    "source_account_id": "line-account-3",
    "rate_limit_per_second": 2,
}
AUTH = {"Authorization": f"Bearer {TOKEN}"}
USER_ID_RE = re.compile(r"^U[0-9a-f]{32}$")
ULID_RE = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")
BOT_ID = "U" + hashlib.sha256(CHANNEL["channel_id"].encode()).hexdigest()[:32]


def expected_signature(body: bytes, secret: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


class Receiver:
    """A real HTTP webhook receiver on 127.0.0.1 that records headers and raw bodies."""

    def __init__(self, status: int = 200, delay: float = 0.0) -> None:
        self.status = status
        self.delay = delay
        self.requests: list[tuple[dict[str, str], bytes]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length)
                outer.requests.append(({k.lower(): v for k, v in self.headers.items()}, raw))
                if outer.delay:
                    time.sleep(outer.delay)
                self.send_response(outer.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/webhooks/line/1650000001"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def only_body(self) -> dict:
        """The single received request, after checking its signature on the raw bytes."""
        assert len(self.requests) == 1
        headers, raw = self.requests[0]
        good = expected_signature(raw, SECRET)
        assert hmac.compare_digest(headers["x-line-signature"].encode(), good.encode())
        assert headers["content-type"].startswith("application/json")
        return json.loads(raw)


@pytest.fixture
def sandbox():
    app = create_line_sandbox_app(
        LineSandboxConfig(channels=[CHANNEL, UNVERIFIED, LIMITED], webhook_timeout_seconds=0.5,
                          endpoint_propagation_seconds=0)
    )
    return app.test_client()


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


def closed_port_url() -> str:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"https://127.0.0.1:{port}/webhook"


def follow(client, user_id: str | None = None, deliver: bool = False, **extra) -> dict:
    body = {"channel_id": CHANNEL["channel_id"], "deliver": deliver, **extra}
    if user_id:
        body["user_id"] = user_id
    response = client.post("/sandbox/follow", json=body)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def set_endpoint(client, url: str) -> None:
    """As an operator sets it in the console (http on loopback allowed by the fake)."""
    response = client.post("/sandbox/webhook-endpoint",
                           json={"channel_id": CHANNEL["channel_id"], "endpoint": url})
    assert response.status_code == 200


# -- auth, ids and bot info ----------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer nope"}, {"Authorization": TOKEN}, {"Authorization": "Basic x"}],
)
def test_api_refuses_missing_or_unknown_token(sandbox, headers):
    response = sandbox.get("/v2/bot/info", headers=headers)
    assert response.status_code == 401
    assert response.get_json() == {
        "message": "Authentication failed. Confirm that the access token in the authorization "
        "header is valid."
    }
    uuid.UUID(response.headers["X-Line-Request-Id"])


def test_bot_info_has_deterministic_bot_user_id(sandbox):
    response = sandbox.get("/v2/bot/info", headers=AUTH)
    assert response.status_code == 200
    assert response.get_json() == {
        "userId": BOT_ID,
        "basicId": "@main",
        "displayName": "main",
        "chatMode": "bot",
        "markAsReadMode": "auto",
    }
    first = response.headers["X-Line-Request-Id"]
    assert sandbox.get("/v2/bot/info", headers=AUTH).headers["X-Line-Request-Id"] != first
    assert sandbox.get("/healthz").status_code == 200


# -- profile ---------------------------------------------------------------------------------


def test_profile_only_for_current_friends(sandbox):
    user_id = new_user_id()
    assert sandbox.get(f"/v2/bot/profile/{user_id}", headers=AUTH).status_code == 404

    known = sandbox.post(
        "/sandbox/users",
        json={"channel_id": CHANNEL["channel_id"], "user_id": user_id, "display_name": "Aiko"},
    )
    assert known.status_code == 201
    missing = sandbox.get(f"/v2/bot/profile/{user_id}", headers=AUTH)
    assert missing.status_code == 404
    assert missing.get_json() == {"message": "Not found"}

    follow(sandbox, user_id)
    profile = sandbox.get(f"/v2/bot/profile/{user_id}", headers=AUTH)
    assert profile.status_code == 200
    data = profile.get_json()
    assert data["userId"] == user_id and data["displayName"] == "Aiko"
    assert data["language"] == "en"
    assert set(data) == {"displayName", "userId", "language", "pictureUrl", "statusMessage"}

    # another channel of the sandbox does not see this friendship
    other = {"Authorization": f"Bearer {UNVERIFIED['access_token']}"}
    assert sandbox.get(f"/v2/bot/profile/{user_id}", headers=other).status_code == 404

    blocked = sandbox.post(
        "/sandbox/unfollow",
        json={"channel_id": CHANNEL["channel_id"], "user_id": user_id, "deliver": False},
    )
    assert blocked.status_code == 200
    assert sandbox.get(f"/v2/bot/profile/{user_id}", headers=AUTH).status_code == 404


@pytest.mark.parametrize("bad", ["U" + "A" * 32, "U" + "0" * 31, "X" + "0" * 32, "user1"])
def test_profile_rejects_malformed_user_id(sandbox, bad):
    response = sandbox.get(f"/v2/bot/profile/{bad}", headers=AUTH)
    assert response.status_code == 400
    assert response.get_json() == {"message": "The value for the 'userId' parameter is invalid"}


# -- followers -------------------------------------------------------------------------------


def test_followers_pages_with_next_and_leaves_out_blocked(sandbox):
    friends = [follow(sandbox)["event"]["source"]["userId"] for _ in range(8)]
    blocked = friends.pop(3)
    sandbox.post(
        "/sandbox/unfollow",
        json={"channel_id": CHANNEL["channel_id"], "user_id": blocked, "deliver": False},
    )

    pages, start = [], None
    while True:
        query = "limit=3" + (f"&start={start}" if start else "")
        response = sandbox.get(f"/v2/bot/followers/ids?{query}", headers=AUTH)
        assert response.status_code == 200
        page = response.get_json()
        pages.append(page["userIds"])
        start = page.get("next")
        if start is None:
            assert "next" not in page
            break
        assert len(pages) < 10
    assert [len(p) for p in pages] == [3, 3, 1]
    assert [u for p in pages for u in p] == friends

    everything = sandbox.get("/v2/bot/followers/ids", headers=AUTH).get_json()
    assert everything == {"userIds": friends}
    exact = sandbox.get("/v2/bot/followers/ids?limit=7", headers=AUTH).get_json()
    assert exact == {"userIds": friends}  # a full last page has no "next"


@pytest.mark.parametrize("query", ["limit=1001", "limit=0", "limit=abc", "start=not-a-token"])
def test_followers_rejects_bad_limit_and_start(sandbox, query):
    response = sandbox.get(f"/v2/bot/followers/ids?{query}", headers=AUTH)
    assert response.status_code == 400
    assert "message" in response.get_json()


def test_followers_accepts_limit_1000(sandbox):
    assert sandbox.get("/v2/bot/followers/ids?limit=1000", headers=AUTH).status_code == 200


def test_followers_forbidden_for_unverified_account(sandbox):
    headers = {"Authorization": f"Bearer {UNVERIFIED['access_token']}"}
    response = sandbox.get("/v2/bot/followers/ids", headers=headers)
    assert response.status_code == 403
    assert response.get_json() == {
        "message": "Access to this API is not available for your account"
    }


# -- link tokens and account link ------------------------------------------------------------


def issue_token(client, user_id: str) -> str:
    response = client.post(f"/v2/bot/user/{user_id}/linkToken", headers=AUTH)
    assert response.status_code == 200
    return response.get_json()["linkToken"]


def test_link_token_is_recorded_and_account_link_delivers(sandbox, receiver):
    user_id = follow(sandbox)["event"]["source"]["userId"]
    token = issue_token(sandbox, user_id)
    assert re.fullmatch(r"[A-Za-z0-9]{32}", token)

    records = sandbox.get("/sandbox/state").get_json()["linkTokens"]
    assert len(records) == 1
    record = records[0]
    assert record["linkToken"] == token and record["userId"] == user_id
    assert record["channelId"] == CHANNEL["channel_id"]
    assert record["expiresAt"] - record["issuedAt"] == pytest.approx(600)

    assert sandbox.post("/v2/bot/user/Ubad/linkToken", headers=AUTH).status_code == 400

    set_endpoint(sandbox, receiver.url)
    linked = sandbox.post(
        "/sandbox/account-link", json={"link_token": token, "nonce": "n-123", "result": "ok"}
    ).get_json()
    assert linked["delivery"]["status"] == 200 and linked["page"] == "linked"
    event = receiver.only_body()["events"][0]
    assert event["type"] == "accountLink"
    assert event["link"] == {"result": "ok", "nonce": "n-123"}
    assert event["source"] == {"type": "user", "userId": user_id}
    assert re.fullmatch(r"[0-9a-f]{32}", event["replyToken"])


def test_a_used_unknown_or_expired_link_token_sends_no_event(receiver):
    app = create_line_sandbox_app(LineSandboxConfig(channels=[CHANNEL],
                                                    link_token_ttl_seconds=1))
    client = app.test_client()
    set_endpoint(client, receiver.url)
    user_id = follow(client)["event"]["source"]["userId"]
    used = issue_token(client, user_id)
    assert client.post("/sandbox/account-link",
                       json={"link_token": used, "nonce": "n-1"}).get_json()["page"] == "linked"
    expired = issue_token(client, user_id)
    time.sleep(1.1)
    for token, why in ((used, "used"), ("no-such-token", "unknown"), (expired, "expired")):
        out = client.post("/sandbox/account-link", json={"link_token": token, "nonce": "n-2"})
        assert out.get_json() == {"event": None, "delivery": None,
                                  "page": f"error: this link token is {why}"}
    assert len(receiver.requests) == 1  # only the first, valid use reached the bot


@pytest.mark.parametrize("how", ["failed", "impersonated"])
def test_a_failed_link_has_no_source_and_no_reply_token(sandbox, receiver, how):
    set_endpoint(sandbox, receiver.url)
    user_id = follow(sandbox)["event"]["source"]["userId"]
    body = {"link_token": issue_token(sandbox, user_id), "nonce": "n-3"}
    body.update({"result": "failed"} if how == "failed" else {"as_user": new_user_id()})
    out = sandbox.post("/sandbox/account-link", json=body).get_json()
    assert out["page"] == "failed"
    event = receiver.only_body()["events"][0]
    assert event["link"] == {"result": "failed", "nonce": "n-3"}
    assert "source" not in event and "replyToken" not in event
    again = sandbox.post("/sandbox/account-link", json=body).get_json()
    assert again["event"] is None  # the token was used up by the failed attempt


def test_account_link_dialog_in_a_browser(sandbox, receiver):
    """The page the brand redirects to: LINE's user is the one logged in on the device."""
    set_endpoint(sandbox, receiver.url)
    user_id = follow(sandbox)["event"]["source"]["userId"]
    token = issue_token(sandbox, user_id)
    query = f"linkToken={token}&nonce=n-4"
    assert sandbox.get(f"/dialog/bot/accountLink?{query}").status_code == 401  # not logged in
    assert sandbox.get(f"/sandbox/browser-login?user_id={user_id}").status_code == 200
    page = sandbox.get(f"/dialog/bot/accountLink?{query}")
    assert page.status_code == 200 and b'id="link"' in page.data
    done = sandbox.post("/dialog/bot/accountLink", data={"linkToken": token, "nonce": "n-4"})
    assert b"Accounts linked" in done.data
    assert receiver.only_body()["events"][0]["link"] == {"result": "ok", "nonce": "n-4"}
    again = sandbox.get(f"/dialog/bot/accountLink?{query}")
    assert again.status_code == 400 and b"used" in again.data


# -- webhook endpoint ------------------------------------------------------------------------


def test_webhook_endpoint_set_and_get(sandbox):
    """GET is 404 until an endpoint is set (LINE's "Webhook endpoint not found")."""
    empty = sandbox.get("/v2/bot/channel/webhook/endpoint", headers=AUTH)
    assert empty.status_code == 404
    response = sandbox.put(
        "/v2/bot/channel/webhook/endpoint",
        json={"endpoint": "https://example.com/webhooks/line/1650000001"},
        headers=AUTH,
    )
    assert response.status_code == 200 and response.get_json() == {}
    got = sandbox.get("/v2/bot/channel/webhook/endpoint", headers=AUTH).get_json()
    assert got == {"endpoint": "https://example.com/webhooks/line/1650000001", "active": True}


@pytest.mark.parametrize(
    "body",
    [
        {"endpoint": "ftp://example.com/x"},
        {"endpoint": "http://example.com/webhooks/line"},  # HTTPS only
        {"endpoint": "not a url"},
        {"endpoint": "https://example.com/" + "a" * 500},
        {},
        {"endpoint": 5},
    ],
)
def test_webhook_endpoint_rejects_bad_urls(sandbox, body):
    response = sandbox.put("/v2/bot/channel/webhook/endpoint", json=body, headers=AUTH)
    assert response.status_code == 400
    assert response.get_json()["details"][0]["property"] == "endpoint"


def test_a_new_endpoint_shows_only_after_it_propagates(monkeypatch):
    """"It may take up to a minute for changes to be reflected": meanwhile GET, deliveries and
    the test API see the old one."""
    clock = [1000.0]
    monkeypatch.setattr("sandboxes.line.state.time.monotonic", lambda: clock[0])
    client = create_line_sandbox_app(LineSandboxConfig(
        channels=[CHANNEL], endpoint_propagation_seconds=60)).test_client()
    new = "https://example.com/webhooks/line/new"
    assert client.put("/v2/bot/channel/webhook/endpoint", json={"endpoint": new},
                      headers=AUTH).status_code == 200
    assert client.get("/v2/bot/channel/webhook/endpoint", headers=AUTH).status_code == 404
    clock[0] += 61
    assert client.get("/v2/bot/channel/webhook/endpoint",
                      headers=AUTH).get_json()["endpoint"] == new


def test_the_webhook_test_allows_60_calls_an_hour():
    client = create_line_sandbox_app(LineSandboxConfig(channels=[CHANNEL])).test_client()
    body = {"endpoint": closed_port_url()}
    answers = [client.post("/v2/bot/channel/webhook/test", json=body, headers=AUTH).status_code
               for _ in range(61)]
    assert answers[:60] == [200] * 60 and answers[60] == 429
    assert client.get("/v2/bot/info", headers=AUTH).status_code == 200, "limits are per endpoint"


def test_webhook_endpoint_needs_auth(sandbox):
    response = sandbox.put("/v2/bot/channel/webhook/endpoint", json={"endpoint": "https://x.io"})
    assert response.status_code == 401


# -- webhook delivery ------------------------------------------------------------------------


def test_follow_then_block_then_unblock_deliver_signed_webhooks(sandbox, receiver):
    set_endpoint(sandbox, receiver.url)
    user_id = new_user_id()
    result = follow(sandbox, user_id, deliver=True, display_name="Ünïcode 太郎 😀")
    assert result["delivery"] == {
        "status": 200,
        "error": None,
        "reason": "OK",
        "elapsedMs": result["delivery"]["elapsedMs"],
    }
    headers, raw = receiver.requests[0]
    body = receiver.only_body()
    assert raw == webhook_body(BOT_ID, body["events"])  # compact, ASCII-escaped serialisation
    assert body["destination"] == BOT_ID
    event = body["events"][0]
    assert event == result["event"]
    assert event["type"] == "follow" and event["mode"] == "active"
    assert event["source"] == {"type": "user", "userId": user_id}
    assert ULID_RE.match(event["webhookEventId"])
    assert re.fullmatch(r"[0-9a-f]{32}", event["replyToken"])
    assert event["deliveryContext"] == {"isRedelivery": False}
    assert event["follow"] == {"isUnblocked": False}
    assert abs(event["timestamp"] - time.time() * 1000) < 5000
    # a wrong secret must not verify the same bytes
    assert headers["x-line-signature"] != expected_signature(raw, "another-secret")

    receiver.requests.clear()
    blocked = sandbox.post(
        "/sandbox/unfollow", json={"channel_id": CHANNEL["channel_id"], "user_id": user_id}
    ).get_json()
    unfollow = receiver.only_body()["events"][0]
    assert unfollow == blocked["event"]
    assert unfollow["type"] == "unfollow" and "replyToken" not in unfollow
    assert unfollow["source"]["userId"] == user_id

    receiver.requests.clear()
    again = follow(sandbox, user_id, deliver=True)
    assert receiver.only_body()["events"][0]["follow"] == {"isUnblocked": True}
    assert again["event"]["webhookEventId"] != event["webhookEventId"]


def test_follow_of_a_friend_and_block_of_a_stranger_are_refused(sandbox):
    user_id = follow(sandbox)["event"]["source"]["userId"]
    twice = sandbox.post(
        "/sandbox/follow", json={"channel_id": CHANNEL["channel_id"], "user_id": user_id}
    )
    assert twice.status_code == 409
    stranger = sandbox.post(
        "/sandbox/unfollow", json={"channel_id": CHANNEL["channel_id"], "user_id": new_user_id()}
    )
    assert stranger.status_code == 409
    unknown = sandbox.post("/sandbox/follow", json={"channel_id": "999"})
    assert unknown.status_code == 404


def test_follow_without_endpoint_still_befriends(sandbox):
    result = follow(sandbox, deliver=True)
    assert result["delivery"]["status"] is None
    assert "endpoint" in result["delivery"]["error"]
    friends = sandbox.get("/sandbox/state").get_json()["channels"]["1650000001"]["friends"]
    assert friends == [result["event"]["source"]["userId"]]


def test_failed_delivery_is_redelivered_with_same_event_id():
    failing = Receiver(status=500)
    try:
        client = create_line_sandbox_app(LineSandboxConfig(channels=[CHANNEL])).test_client()
        set_endpoint(client, failing.url)
        result = follow(client, deliver=True, redeliver=True)
        assert result["delivery"]["status"] == 500
        assert result["delivery"]["reason"] == "ERROR_STATUS_CODE"
        assert result["redelivery"]["status"] == 500
        first, second = (json.loads(raw)["events"][0] for _, raw in failing.requests)
        assert first["webhookEventId"] == second["webhookEventId"]
        assert first["timestamp"] == second["timestamp"]
        assert first["deliveryContext"] == {"isRedelivery": False}
        assert second["deliveryContext"] == {"isRedelivery": True}
    finally:
        failing.close()


def test_deliver_sends_given_events_and_marks_redelivery(sandbox, receiver):
    set_endpoint(sandbox, receiver.url)
    events = [make_follow_event(new_user_id()), make_unfollow_event(new_user_id())]
    response = sandbox.post(
        "/sandbox/deliver",
        json={"channel_id": CHANNEL["channel_id"], "events": events, "redelivery": True},
    )
    assert response.get_json()["delivery"]["status"] == 200
    got = receiver.only_body()["events"]
    assert [e["webhookEventId"] for e in got] == [e["webhookEventId"] for e in events]
    assert all(e["deliveryContext"]["isRedelivery"] is True for e in got)

    receiver.requests.clear()
    sandbox.post(
        "/sandbox/deliver",
        json={"channel_id": CHANNEL["channel_id"], "events": events, "bad_signature": True},
    )
    headers, raw = receiver.requests[0]
    assert headers["x-line-signature"] != expected_signature(raw, SECRET)


# -- webhook test (console "Verify") ---------------------------------------------------------


def test_webhook_test_reports_could_not_connect(sandbox):
    response = sandbox.post(
        "/v2/bot/channel/webhook/test", json={"endpoint": closed_port_url()}, headers=AUTH
    )
    assert response.status_code == 200
    data = response.get_json()
    assert data["success"] is False
    assert data["reason"] == "COULD_NOT_CONNECT"
    assert data["statusCode"] == 0
    assert data["timestamp"].endswith("Z")


def test_webhook_test_succeeds_against_live_receiver(sandbox, receiver):
    set_endpoint(sandbox, receiver.url)
    data = sandbox.post("/v2/bot/channel/webhook/test", json={}, headers=AUTH).get_json()
    assert data["success"] is True
    assert data["statusCode"] == 200 and data["reason"] == "OK"
    assert receiver.only_body() == {"destination": BOT_ID, "events": []}


def test_webhook_test_reports_error_status_and_timeout(sandbox):
    for receiver, reason, status in (
        (Receiver(status=503), "ERROR_STATUS_CODE", 503),
        (Receiver(delay=1.5), "REQUEST_TIMEOUT", 0),
    ):
        try:
            set_endpoint(sandbox, receiver.url)
            data = sandbox.post("/v2/bot/channel/webhook/test", json={}, headers=AUTH).get_json()
            assert (data["success"], data["reason"], data["statusCode"]) == (False, reason, status)
        finally:
            receiver.close()


def test_webhook_test_without_any_endpoint_is_404(sandbox):
    assert sandbox.post("/v2/bot/channel/webhook/test", json={}, headers=AUTH).status_code == 404


# -- push, rate limit, request log -----------------------------------------------------------


def test_push_retry_key_conflict(sandbox):
    body = {"to": new_user_id(), "messages": [{"type": "text", "text": "hi"}]}
    key = str(uuid.uuid4())
    first = sandbox.post(
        "/v2/bot/message/push", json=body, headers={**AUTH, "X-Line-Retry-Key": key}
    )
    assert first.status_code == 200
    sent = first.get_json()["sentMessages"]
    assert len(sent) == 1 and sent[0]["id"]

    again = sandbox.post(
        "/v2/bot/message/push", json=body, headers={**AUTH, "X-Line-Retry-Key": key}
    )
    assert again.status_code == 409
    assert again.headers["x-line-accepted-request-id"] == first.headers["X-Line-Request-Id"]
    assert again.get_json()["sentMessages"] == sent

    other = sandbox.post(
        "/v2/bot/message/push", json=body, headers={**AUTH, "X-Line-Retry-Key": str(uuid.uuid4())}
    )
    assert other.status_code == 200
    no_key = [sandbox.post("/v2/bot/message/push", json=body, headers=AUTH) for _ in range(2)]
    assert [r.status_code for r in no_key] == [200, 200]
    bad_key = sandbox.post(
        "/v2/bot/message/push", json=body, headers={**AUTH, "X-Line-Retry-Key": "nope"}
    )
    assert bad_key.status_code == 400
    assert sandbox.post("/v2/bot/message/push", json={"to": "x"}, headers=AUTH).status_code == 400
    assert len(sandbox.get("/sandbox/state").get_json()["pushes"]) == 4


def test_rate_limit_per_channel(sandbox):
    headers = {"Authorization": f"Bearer {LIMITED['access_token']}"}
    statuses = [sandbox.get("/v2/bot/info", headers=headers).status_code for _ in range(4)]
    assert statuses[:2] == [200, 200]
    assert 429 in statuses[2:]
    limited = sandbox.get("/v2/bot/info", headers=headers)
    assert limited.status_code == 429
    assert limited.get_json() == {
        "message": "The API rate limit has been exceeded. Try again later."
    }
    # other channels are not affected
    assert sandbox.get("/v2/bot/info", headers=AUTH).status_code == 200
    time.sleep(1.05)
    assert sandbox.get("/v2/bot/info", headers=headers).status_code == 200


def test_request_log_and_reset(sandbox):
    sandbox.get("/v2/bot/info", headers=AUTH)
    sandbox.get("/v2/bot/info")
    sandbox.get("/v2/bot/followers/ids?limit=5", headers=AUTH)
    log = sandbox.get("/sandbox/requests").get_json()["requests"]
    assert [(r["method"], r["path"], r["channel"], r["status"]) for r in log] == [
        ("GET", "/v2/bot/info", "1650000001", 200),
        ("GET", "/v2/bot/info", None, 401),
        ("GET", "/v2/bot/followers/ids", "1650000001", 200),
    ]
    assert log[2]["query"] == "limit=5"
    follow(sandbox)
    assert sandbox.post("/sandbox/reset").status_code == 200
    assert sandbox.get("/sandbox/requests").get_json()["requests"] == []
    assert sandbox.get("/sandbox/state").get_json()["channels"]["1650000001"]["friends"] == []


def test_unknown_route_is_json_404(sandbox):
    response = sandbox.get("/v2/bot/nothing", headers=AUTH)
    assert response.status_code == 404
    assert response.get_json() == {"message": "Not found"}


def test_config_rejects_missing_keys_and_duplicates():
    with pytest.raises(ValueError, match="access_token"):
        LineSandboxConfig(channels=[{**CHANNEL, "access_token": ""}]).parsed_channels()
    with pytest.raises(ValueError, match="channel_id"):
        LineSandboxConfig(channels=[CHANNEL, {**CHANNEL, "access_token": "t2"}]).parsed_channels()


# -- events.py helpers -----------------------------------------------------------------------


def test_id_helpers_have_line_formats():
    user_ids = {new_user_id() for _ in range(50)}
    assert len(user_ids) == 50 and all(USER_ID_RE.match(u) for u in user_ids)
    event_ids = [new_webhook_event_id() for _ in range(50)]
    assert len(set(event_ids)) == 50 and all(ULID_RE.match(e) for e in event_ids)
    # ULIDs lead with the time, so later ids sort after earlier ones
    assert new_webhook_event_id(1_000) < new_webhook_event_id(2_000)


def test_event_builders_shapes():
    user_id = new_user_id()
    follow_event = make_follow_event(user_id, timestamp_ms=123, is_unblocked=True, event_id="E1")
    assert follow_event["timestamp"] == 123 and follow_event["webhookEventId"] == "E1"
    assert follow_event["follow"] == {"isUnblocked": True}
    assert follow_event["source"] == {"type": "user", "userId": user_id}
    assert re.fullmatch(r"[0-9a-f]{32}", follow_event["replyToken"])
    assert make_follow_event(user_id, redelivery=True)["deliveryContext"] == {"isRedelivery": True}
    assert "replyToken" not in make_follow_event(user_id, mode="standby")

    unfollow = make_unfollow_event(user_id)
    assert unfollow["type"] == "unfollow" and "replyToken" not in unfollow
    assert ULID_RE.match(unfollow["webhookEventId"])

    link = make_account_link_event(user_id, "nonce", "failed")
    assert link["link"] == {"result": "failed", "nonce": "nonce"}
    assert "source" not in link and "replyToken" not in link
    with pytest.raises(ValueError):
        make_account_link_event(user_id, "nonce", "maybe")


def test_webhook_body_and_signature():
    events = [make_follow_event("U" + "a" * 32, event_id="X", timestamp_ms=1)]
    events[0]["note"] = "é😀"
    body = webhook_body(BOT_ID, events)
    assert body.isascii() and b"\\u00e9\\ud83d\\ude00" in body
    assert json.loads(body) == {"destination": BOT_ID, "events": events}
    assert sign_body(body, SECRET) == expected_signature(body, SECRET)
    assert sign_body(body, SECRET) != sign_body(body + b" ", SECRET)


# -- the command line ------------------------------------------------------------------------


def test_module_serves_over_http():
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sandboxes.line",
            "--port",
            "0",
            "--channels",
            json.dumps([CHANNEL]),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        match = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)
        assert match, (line, proc.stderr.read() if proc.poll() is not None else "")
        info = requests.get(f"{match.group(1)}/v2/bot/info", headers=AUTH, timeout=5)
        assert info.status_code == 200 and info.json()["userId"] == BOT_ID
    finally:
        proc.terminate()
        proc.wait(timeout=5)
