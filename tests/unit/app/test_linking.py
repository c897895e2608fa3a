"""The linking HTTP API: keys, input checks, queued links, issued/bound nonces, hosted page."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest
from kombu.exceptions import OperationalError

from app import create_app
from core.errors import CredentialsError, TransientError
from core.link_request import LinkRequest
from core.store.link_nonces import NonceStore
from tests.helpers import CHANNEL_ID, make_settings, new_user_id
from workers.registry import LINK_TASK, LINKING_QUEUE

KEY = "linking-api-key-0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}
MOBILE = "66812345678"


class RecordingCelery:
    def __init__(self) -> None:
        self.sent: list[dict] = []
        self.down = False

    def send_task(self, name, kwargs=None, task_id=None, queue=None, **options):
        if self.down:
            raise OperationalError("Connection refused")
        self.sent.append({"name": name, "kwargs": kwargs, "task_id": task_id, "queue": queue})


class FakeLineApi:
    def __init__(self) -> None:
        self.error: Exception | None = None
        self.issued: list[str] = []

    def issue_link_token(self, channel, user_id):
        if self.error:
            raise self.error
        self.issued.append(user_id)
        return f"token{len(self.issued)}"


@pytest.fixture
def celery():
    return RecordingCelery()


@pytest.fixture
def line_api():
    return FakeLineApi()


def build(fake_redis, celery, line_api, **env):
    settings = make_settings(**{"LINECAP_API_KEYS": KEY, **env})
    app = create_app(settings, publisher=object(), redis_client=fake_redis, celery_app=celery)
    app.extensions["linecap.line_api"] = line_api
    return app.test_client()


@pytest.fixture
def client(fake_redis, celery, line_api):
    return build(fake_redis, celery, line_api)


def link_body(**overrides):
    return {"channel": CHANNEL_ID, "line_user_id": new_user_id(), "mobile": MOBILE, **overrides}


def issue(client) -> str:
    response = client.post("/api/v1/link-tokens", headers=AUTH,
                           json={"channel": CHANNEL_ID, "line_user_id": new_user_id()})
    assert response.status_code == 201, response.get_json()
    return response.get_json()["nonce"]


# -- authentication --------------------------------------------------------------------------
@pytest.mark.parametrize("method,path", [
    ("post", "/api/v1/links"), ("post", "/api/v1/link-tokens"),
    ("post", "/api/v1/link-nonces/abcdefghijklmnopqrstuvwxyz/bind"),
    ("get", "/api/v1/link-nonces/abcdefghijklmnopqrstuvwxyz"),
])
def test_api_needs_a_key(client, celery, method, path):
    assert getattr(client, method)(path, json=link_body()).status_code == 401
    wrong = {"Authorization": "Bearer not-the-key-0123456789"}
    assert getattr(client, method)(path, json=link_body(), headers=wrong).status_code == 401
    assert celery.sent == []


def test_api_is_disabled_without_configured_keys(fake_redis, celery, line_api):
    client = build(fake_redis, celery, line_api, LINECAP_API_KEYS="")
    assert client.post("/api/v1/links", json=link_body(), headers=AUTH).status_code == 403


# -- server-to-server link ---------------------------------------------------------------------
def test_link_is_queued_on_the_linking_queue_with_a_stable_id(client, celery):
    body = link_body(mobile="+66812345678", name="Somchai")
    first = client.post("/api/v1/links", json=body, headers=AUTH)
    again = client.post("/api/v1/links", json=body, headers=AUTH)
    assert first.status_code == again.status_code == 202
    assert first.get_json()["link_id"] == again.get_json()["link_id"]
    sent = celery.sent[0]
    assert (sent["name"], sent["queue"], sent["task_id"]) == \
        (LINK_TASK, LINKING_QUEUE, first.get_json()["link_id"])
    assert sent["kwargs"]["channel_id"] == CHANNEL_ID
    request = LinkRequest.from_event(sent["kwargs"]["event"])
    assert (request.line_user_id, request.mobile, request.name) == \
        (body["line_user_id"], MOBILE, "Somchai")
    other = client.post("/api/v1/links", json={**body, "mobile": "66899999999"}, headers=AUTH)
    assert other.get_json()["link_id"] != first.get_json()["link_id"]


@pytest.mark.parametrize("body,field,status", [
    ({"line_user_id": "U123"}, "line_user_id", 400),
    ({"line_user_id": "u" + "a" * 32}, "line_user_id", 400),
    ({"line_user_id": None}, "line_user_id", 400),
    ({"mobile": "12-34"}, "mobile", 400),
    ({"mobile": "1234567"}, "mobile", 400),
    ({"mobile": 66812345678}, "mobile", 400),
    ({"name": "x" * 101}, "name", 400),
    ({"channel": "9999"}, "channel", 404),
    ({"channel": None}, "channel", 400),
])
def test_bad_input_is_a_clear_4xx_and_queues_nothing(client, celery, body, field, status):
    response = client.post("/api/v1/links", json=link_body(**body), headers=AUTH)
    assert response.status_code == status
    assert response.get_json()["field"] == field and response.get_json()["message"]
    assert celery.sent == []


def test_a_body_that_is_not_a_json_object_is_400(client):
    response = client.post("/api/v1/links", data="mobile=1", headers=AUTH)
    assert response.status_code == 400
    assert client.post("/api/v1/links", json=[1], headers=AUTH).status_code == 400


def test_broker_down_is_503(client, celery):
    celery.down = True
    assert client.post("/api/v1/links", json=link_body(), headers=AUTH).status_code == 503


# -- account link: token, bind, page -----------------------------------------------------------
def test_link_token_is_issued_through_line_and_a_nonce_stored(client, line_api, fake_redis):
    user = new_user_id()
    response = client.post("/api/v1/link-tokens", headers=AUTH,
                           json={"channel": CHANNEL_ID, "line_user_id": user})
    assert response.status_code == 201
    body = response.get_json()
    assert line_api.issued == [user]
    assert body["link_page_url"].endswith(f"/link/{body['nonce']}")
    stored = NonceStore(fake_redis, 60).get(body["nonce"])
    assert (stored.line_user_id, stored.link_token, stored.state) == (user, "token1", "issued")


@pytest.mark.parametrize("error,status", [
    (CredentialsError("LINE linkToken: HTTP 401"), 502), (TransientError("timeout"), 503)])
def test_line_refusing_the_link_token_stores_no_nonce(client, line_api, fake_redis, error,
                                                      status):
    line_api.error = error
    response = client.post("/api/v1/link-tokens", headers=AUTH,
                           json={"channel": CHANNEL_ID, "line_user_id": new_user_id()})
    assert response.status_code == status
    assert fake_redis.keys("linecap:link:nonce:*") == []


def test_bind_returns_the_line_account_link_url(client):
    nonce = issue(client)
    response = client.post(f"/api/v1/link-nonces/{nonce}/bind", headers=AUTH,
                           json={"mobile": MOBILE})
    assert response.status_code == 200
    url = urlparse(response.get_json()["account_link_url"])
    assert (url.scheme, url.netloc, url.path) == \
        ("https", "access.line.me", "/dialog/bot/accountLink")
    assert parse_qs(url.query) == {"linkToken": ["token1"], "nonce": [nonce]}
    status = client.get(f"/api/v1/link-nonces/{nonce}", headers=AUTH).get_json()
    assert status["state"] == "bound" and MOBILE not in str(status)


@pytest.mark.parametrize("body,status", [
    ({}, 400), ({"mobile": MOBILE, "customer_id": 5}, 400), ({"mobile": "abc"}, 400),
    ({"customer_id": 0}, 400), ({"customer_id": "12x"}, 400), ({"customer_id": "1000001"}, 200),
])
def test_bind_needs_exactly_one_valid_target(client, body, status):
    nonce = issue(client)
    assert client.post(f"/api/v1/link-nonces/{nonce}/bind", headers=AUTH,
                       json=body).status_code == status


def test_bind_of_an_unknown_or_used_nonce(client, fake_redis):
    unknown = client.post("/api/v1/link-nonces/no-such-nonce-at-all-000/bind", headers=AUTH,
                          json={"mobile": MOBILE})
    assert unknown.status_code == 404
    nonce = issue(client)
    store = NonceStore(fake_redis, 60)
    store.bind(nonce, mobile=MOBILE)
    found = store.get(nonce)
    store.claim(nonce, "E1", found.channel_id, found.line_user_id, 60)
    used = client.post(f"/api/v1/link-nonces/{nonce}/bind", headers=AUTH, json={"mobile": MOBILE})
    assert used.status_code == 409


def test_hosted_page_sends_the_user_to_sign_in_then_on_to_line(client):
    assert client.get("/link/no-such-nonce-at-all-000").status_code == 404
    nonce = issue(client)
    waiting = client.get(f"/link/{nonce}")
    assert waiting.status_code == 200 and b"Sign in" in waiting.data
    assert waiting.headers["Cache-Control"] == "no-store"
    client.post(f"/api/v1/link-nonces/{nonce}/bind", headers=AUTH, json={"mobile": MOBILE})
    onward = client.get(f"/link/{nonce}")
    assert onward.status_code == 302
    assert onward.headers["Location"].startswith("https://access.line.me/dialog/bot/accountLink")


def test_hosted_page_redirects_to_the_brand_login_when_configured(fake_redis, celery, line_api):
    client = build(fake_redis, celery, line_api,
                   LINECAP_LINK_LOGIN_URL="https://brand.example/login?lang=th")
    nonce = issue(client)
    response = client.get(f"/link/{nonce}")
    assert response.status_code == 302
    location = urlparse(response.headers["Location"])
    assert location.netloc == "brand.example"
    assert parse_qs(location.query) == {"lang": ["th"], "nonce": [nonce]}
