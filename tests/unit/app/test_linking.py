"""The linking HTTP API: keys, input checks, queued links, sessions issued and bound in LINE's
order (nonce at bind time, only in the bind response), the hosted page that never sends anyone
to LINE, and hostile bodies answered 4xx."""

from __future__ import annotations

import json
import logging
import time
from urllib.parse import parse_qs, urlparse

import pytest
from kombu.exceptions import OperationalError

from app import create_app
from core.errors import CredentialsError, TransientError
from core.link_request import LinkRequest
from core.store.link_sessions import NONCE_PREFIX, PREFIX, LinkSessionStore, nonce_digest
from tests.helpers import CHANNEL_ID, CHUNKED, make_settings, new_user_id
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
        self.sent.append({"name": name, "kwargs": kwargs, "task_id": task_id, "queue": queue,
                          "kwargsrepr": options.get("kwargsrepr")})


class FakeLineApi:
    def __init__(self) -> None:
        self.error: Exception | None = None
        self.issued: list[str] = []

    def issue_link_token(self, channel, user_id):
        if self.error:
            raise self.error
        self.issued.append(user_id)
        return f"token{len(self.issued)}"

    def profile(self, channel, user_id):
        return {"displayName": "Somchai on LINE", "userId": user_id}


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
    return response.get_json()["session"]


def bind(client, session: str, **body):
    return client.post(f"/api/v1/link-sessions/{session}/bind", headers=AUTH,
                       json=body or {"mobile": MOBILE})


def query_of(url: str) -> dict:
    return {k: v[0] for k, v in parse_qs(urlparse(url).query).items()}


# -- authentication --------------------------------------------------------------------------
@pytest.mark.parametrize("method,path", [
    ("post", "/api/v1/links"), ("post", "/api/v1/link-tokens"),
    ("post", "/api/v1/link-sessions/abcdefghijklmnopqrstuvwxyz012345/bind"),
    ("get", "/api/v1/link-sessions/abcdefghijklmnopqrstuvwxyz012345"),
])
def test_api_needs_a_key(client, celery, method, path):
    assert getattr(client, method)(path, json=link_body()).status_code == 401
    wrong = {"Authorization": "Bearer not-the-key-0123456789"}
    assert getattr(client, method)(path, json=link_body(), headers=wrong).status_code == 401
    assert celery.sent == []


def test_api_is_disabled_without_configured_keys(fake_redis, celery, line_api):
    client = build(fake_redis, celery, line_api, LINECAP_API_KEYS="")
    response = client.post("/api/v1/links", json=link_body(), headers=AUTH)
    assert response.status_code == 403 and "LINECAP_API_KEYS" in response.get_json()["message"]


# -- server-to-server link ---------------------------------------------------------------------
def test_link_is_queued_on_the_linking_queue_with_a_stable_keyed_id(client, celery):
    body = link_body(mobile="+66812345678", name="Somchai")
    first = client.post("/api/v1/links", json=body, headers=AUTH)
    again = client.post("/api/v1/links", json=body, headers=AUTH)
    assert first.status_code == again.status_code == 202
    link_id = first.get_json()["link_id"]
    assert link_id == again.get_json()["link_id"]
    sent = celery.sent[0]
    assert (sent["name"], sent["queue"], sent["task_id"]) == (LINK_TASK, LINKING_QUEUE, link_id)
    assert sent["kwargs"]["channel_id"] == CHANNEL_ID
    request = LinkRequest.from_event(sent["kwargs"]["event"])
    assert (request.line_user_id, request.mobile, request.name) == \
        (body["line_user_id"], MOBILE, "Somchai")
    # Flower and the worker's log see the short form, never the mobile or the name.
    assert MOBILE not in sent["kwargsrepr"] and "Somchai" not in sent["kwargsrepr"]
    other = client.post("/api/v1/links", json={**body, "mobile": "66899999999"}, headers=AUTH)
    assert other.get_json()["link_id"] != link_id


@pytest.mark.parametrize("body,field,status", [
    ({"line_user_id": "U123"}, "line_user_id", 400),
    ({"line_user_id": "u" + "a" * 32}, "line_user_id", 400),
    ({"line_user_id": "../../v2/bot/info"}, "line_user_id", 400),
    ({"line_user_id": None}, "line_user_id", 400),
    ({"mobile": "12-34"}, "mobile", 400),
    ({"mobile": "1234567"}, "mobile", 400),
    ({"mobile": 66812345678}, "mobile", 400),
    ({"mobile": "６６８１２３４５６７８"}, "mobile", 400),  # full-width digits
    ({"mobile": "٦٦٨١٢٣٤٥٦٧٨"}, "mobile", 400),  # Arabic-Indic digits
    ({"name": "x" * 101}, "name", 400),
    ({"channel": "9999"}, "channel", 404),
    ({"channel": None}, "channel", 400),
])
def test_bad_input_is_a_clear_4xx_and_queues_nothing(client, celery, body, field, status):
    response = client.post("/api/v1/links", json=link_body(**body), headers=AUTH)
    assert response.status_code == status
    assert response.get_json()["field"] == field and response.get_json()["message"]
    assert celery.sent == []


@pytest.mark.parametrize("raw", [
    b"mobile=1", b"[1]", b"\xff\xfe", b'{"channel": NaN}', b'{"a": Infinity}',
    b"[" * 5000 + b"]" * 5000,  # deeper than the parser's recursion limit
    json.dumps({"channel": CHANNEL_ID, "x": [[[[[[1]]]]]]}).encode(),  # deeper than allowed
])
def test_a_body_that_is_not_a_small_json_object_is_400(client, celery, raw):
    response = client.post("/api/v1/links", data=raw, headers=AUTH)
    assert response.status_code == 400 and response.get_json()["message"]
    assert celery.sent == []


def test_a_body_over_the_link_api_limit_is_413_chunked_or_not(client, celery):
    big = json.dumps(link_body(name="x" * 20_000)).encode()
    assert client.post("/api/v1/links", data=big, headers=AUTH).status_code == 413
    import io

    chunked = client.post("/api/v1/links", input_stream=io.BytesIO(big), headers=AUTH,
                          environ_overrides=CHUNKED)
    assert chunked.status_code == 413
    assert celery.sent == []


def test_broker_down_is_503(client, celery):
    celery.down = True
    assert client.post("/api/v1/links", json=link_body(), headers=AUTH).status_code == 503


# -- account link: token, session, bind, page --------------------------------------------------
def test_link_token_is_issued_through_line_and_a_session_stored(client, line_api, fake_redis):
    user = new_user_id()
    response = client.post("/api/v1/link-tokens", headers=AUTH,
                           json={"channel": CHANNEL_ID, "line_user_id": user})
    assert response.status_code == 201
    body = response.get_json()
    assert line_api.issued == [user]
    assert body["link_page_url"].endswith(f"/link/{body['session']}")
    assert body["expires_in"] == 3600 and "nonce" not in body
    stored = LinkSessionStore(fake_redis, 60).get(body["session"])
    assert (stored.line_user_id, stored.link_token, stored.state) == (user, "token1", "issued")
    assert fake_redis.keys(NONCE_PREFIX + "*") == []  # no nonce before anyone logged in


@pytest.mark.parametrize("error,status", [
    (CredentialsError("LINE linkToken: HTTP 401"), 502), (TransientError("timeout"), 503)])
def test_line_refusing_the_link_token_stores_no_session(client, line_api, fake_redis, error,
                                                        status):
    line_api.error = error
    response = client.post("/api/v1/link-tokens", headers=AUTH,
                           json={"channel": CHANNEL_ID, "line_user_id": new_user_id()})
    assert response.status_code == status
    assert fake_redis.keys("linecap:link:*") == []


def test_bind_mints_the_nonce_and_returns_it_only_in_the_line_url(client, fake_redis):
    session = issue(client)
    response = bind(client, session)
    assert response.status_code == 200
    body = response.get_json()
    url = urlparse(body["account_link_url"])
    assert (url.scheme, url.netloc, url.path) == \
        ("https", "access.line.me", "/dialog/bot/accountLink")
    query = query_of(body["account_link_url"])
    assert query["linkToken"] == "token1" and query["nonce"] != session
    assert len(query["nonce"]) >= 22  # >= 128 bits of base64
    assert body["line_display_name"] == "Somchai on LINE" and body["expires_in"] > 300
    # Redis holds a digest of the nonce, never the nonce itself.
    assert fake_redis.get(NONCE_PREFIX + nonce_digest(query["nonce"])) == session
    assert query["nonce"] not in json.dumps(fake_redis.hgetall(PREFIX + session))
    status = client.get(f"/api/v1/link-sessions/{session}", headers=AUTH).get_json()
    assert status["state"] == "bound" and MOBILE not in json.dumps(status)
    assert status["line_display_name"] == "Somchai on LINE"
    # A second login binds again: a fresh nonce, and the first one no longer counts.
    second = query_of(bind(client, session, customer_id=1000001).get_json()["account_link_url"])
    assert second["nonce"] != query["nonce"]
    store = LinkSessionStore(fake_redis, 60)
    found = store.get(session)
    assert store.claim(query["nonce"], "E1", CHANNEL_ID, found.line_user_id, 60)[0] == "unknown"
    assert store.claim(second["nonce"], "E2", CHANNEL_ID, found.line_user_id, 60)[0] == "claimed"


def test_bind_reissues_a_link_token_that_has_little_time_left(client, line_api, fake_redis):
    session = issue(client)
    fake_redis.hset(PREFIX + session, "token_at", time.time() - 400)  # 200 s left of 600
    body = bind(client, session).get_json()
    assert query_of(body["account_link_url"])["linkToken"] == "token2"
    assert len(line_api.issued) == 2 and body["expires_in"] == 600
    fresh = issue(client)
    assert query_of(bind(client, fresh).get_json()["account_link_url"])["linkToken"] == "token3"
    assert len(line_api.issued) == 3  # a fresh token is not re-issued


@pytest.mark.parametrize("body,status", [
    ({}, 400), ({"mobile": MOBILE, "customer_id": 5}, 400), ({"mobile": "abc"}, 400),
    ({"customer_id": 0}, 400), ({"customer_id": "12x"}, 400), ({"customer_id": "²"}, 400),
    ({"customer_id": "١٢٣"}, 400), ({"customer_id": 2**64}, 400), ({"customer_id": True}, 400),
    ({"customer_id": "1000001"}, 200),
])
def test_bind_needs_exactly_one_valid_target(client, body, status):
    session = issue(client)
    response = client.post(f"/api/v1/link-sessions/{session}/bind", headers=AUTH, json=body)
    assert response.status_code == status, response.get_json()
    if status == 400:
        assert response.get_json()["message"]


def test_bind_of_an_unknown_used_or_failed_session(client, fake_redis):
    assert bind(client, "no-such-session-at-all-000000000").status_code == 404
    assert bind(client, "../../etc").status_code == 404
    store = LinkSessionStore(fake_redis, 60)
    used, failed = issue(client), issue(client)
    nonce = query_of(bind(client, used).get_json()["account_link_url"])["nonce"]
    store.claim(nonce, "E1", CHANNEL_ID, store.get(used).line_user_id, 60)
    assert bind(client, used).status_code == 409
    nonce = query_of(bind(client, failed).get_json()["account_link_url"])["nonce"]
    assert store.burn(nonce, "link_failed") == "burned"
    assert bind(client, failed).status_code == 409


def test_hosted_page_never_sends_anyone_to_line(client, fake_redis):
    assert client.get("/link/no-such-session-at-all-000000000").status_code == 404
    session = issue(client)
    waiting = client.get(f"/link/{session}")
    assert waiting.status_code == 200 and b"Sign in" in waiting.data
    assert waiting.headers["Cache-Control"] == "no-store"
    assert waiting.headers["Referrer-Policy"] == "no-referrer"
    bind(client, session)
    after = client.get(f"/link/{session}")  # the URL someone forwarded, after the login
    assert after.status_code == 200 and "Location" not in after.headers


def test_hosted_page_says_how_the_link_ended(client, fake_redis):
    store = LinkSessionStore(fake_redis, 60)
    used, failed = issue(client), issue(client)
    nonce = query_of(bind(client, used).get_json()["account_link_url"])["nonce"]
    store.claim(nonce, "E1", CHANNEL_ID, store.get(used).line_user_id, 60)
    page = client.get(f"/link/{used}")
    assert page.status_code == 410 and b"already used" in page.data
    store.record_outcome(used, "linked")
    assert b"Your LINE account is linked" in client.get(f"/link/{used}").data
    nonce = query_of(bind(client, failed).get_json()["account_link_url"])["nonce"]
    store.burn(nonce, "link_failed")
    page = client.get(f"/link/{failed}")
    assert page.status_code == 410 and b"did not complete" in page.data


def test_hosted_page_redirects_to_the_brand_login_when_configured(fake_redis, celery, line_api):
    client = build(fake_redis, celery, line_api,
                   LINECAP_LINK_LOGIN_URL="https://brand.example/login?lang=th")
    session = issue(client)
    for _ in ("before the login", "after it"):
        response = client.get(f"/link/{session}")
        assert response.status_code == 302
        location = urlparse(response.headers["Location"])
        assert location.netloc == "brand.example"
        assert parse_qs(location.query) == {"lang": ["th"], "session": [session]}
        bind(client, session)


def test_account_link_url_follows_the_configured_line_base(fake_redis, celery, line_api):
    client = build(fake_redis, celery, line_api, LINE_ACCESS_BASE_URL="http://127.0.0.1:9")
    url = bind(client, issue(client)).get_json()["account_link_url"]
    assert url.startswith("http://127.0.0.1:9/dialog/bot/accountLink?")


def test_an_error_log_names_the_route_not_the_session(fake_redis, celery, line_api, caplog):
    client = build(fake_redis, celery, line_api)
    session = issue(client)

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    fake_redis.hgetall = broken
    client.application.testing = False  # let Flask log the exception and answer 500
    with caplog.at_level(logging.ERROR):
        assert client.get(f"/link/{session}").status_code == 500
    assert "/link/<session>" in caplog.text and session not in caplog.text
