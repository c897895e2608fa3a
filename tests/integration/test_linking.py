"""Linking LINE users to existing customers and `linecap setup`, on real processes over HTTP:
gunicorn, a Celery worker, the Capillary sandbox and the fake LINE platform.
"""

from __future__ import annotations

import argparse
import json
import os
from urllib.parse import parse_qs, urlparse

import pytest
import requests

from cli import setup
from cli.localstack.ports import free_port
from core.store.connection import redis_client
from tests.helpers import ACCESS_TOKEN, CHANNEL_ID, SOURCE_ACCOUNT_ID, channels_json, new_user_id
from tests.integration.stack import Stack, database_url, dump, wait_until

API_KEY = "linking-api-key-for-tests-0123"
AUTH = {"Authorization": f"Bearer {API_KEY}"}


@pytest.fixture(scope="module")
def stack(redis_url, tmp_path_factory):
    """Named like the shared fixture so failures show these processes' logs."""
    with Stack(database_url(redis_url, 9), tmp_path_factory.mktemp("linking"),
               LINECAP_API_KEYS=API_KEY).running() as stack:
        stack.console_webhook(f"{stack.web_url}/webhooks/line/{CHANNEL_ID}")
        yield stack


def new_mobile() -> str:
    return "66" + str(int(new_user_id()[1:9], 16)).rjust(9, "0")[-9:]


def seed_instore(stack: Stack, mobile: str) -> int:
    response = stack.capillary_api("POST", "/v2/customers", {
        "loyaltyInfo": {"loyaltyType": "non_loyalty"},
        "profiles": [{"source": "INSTORE", "firstName": "Instore",
                      "identifiers": [{"type": "mobile", "value": mobile}]}]})
    assert response.status_code == 200, response.text
    return response.json()["createdId"]


def follow_on_line(stack: Stack, user: str) -> dict:
    """The user adds the account in the fake LINE app; it delivers the follow; linecap makes
    them a LINE-only customer."""
    response = requests.post(f"{stack.line_url}/sandbox/follow",
                             json={"channel_id": CHANNEL_ID, "user_id": user}, timeout=10)
    assert response.json()["delivery"]["status"] == 200, response.text
    return wait_until(lambda: next(iter(opted_in(stack, user)), None), message="LINE-only")


def opted_in(stack: Stack, user: str) -> list[dict]:
    return [c for c in stack.customers_with(user)
            if stack.line_subscription(c, SOURCE_ACCOUNT_ID) == "OPTIN"]


def profile(customer: dict, source: str) -> dict | None:
    return next((p for p in customer["profiles"] if p["source"] == source), None)


def on_one_customer(stack: Stack, user: str, customer_id: int) -> list[dict] | None:
    found = stack.customers_with(user)
    return found if [c["id"] for c in found] == [customer_id] and profile(found[0], "LINE") \
        else None


def writes_since(stack: Stack, since: int) -> list[dict]:
    return [c for c in stack.calls()[since:] if c["method"] != "GET"]


def worker_log(stack: Stack) -> str:
    return "".join(p.log() for p in stack.procs if p.name.startswith("worker-"))


def api(stack: Stack, method: str, path: str, body: dict | None = None) -> requests.Response:
    return requests.request(method, stack.web_url + path, json=body, headers=AUTH, timeout=10)


def test_link_api_moves_the_line_profile_onto_the_mobile_customer(stack):
    user, mobile = new_user_id(), new_mobile()
    customer_id = seed_instore(stack, mobile)
    line_only = follow_on_line(stack, user)
    assert line_only["id"] != customer_id

    body = {"channel": CHANNEL_ID, "line_user_id": user, "mobile": mobile, "name": "Somchai"}
    queued = api(stack, "POST", "/api/v1/links", body)
    assert queued.status_code == 202, queued.text

    [customer] = wait_until(lambda: on_one_customer(stack, user, customer_id), 30,
                            message="LINE profile on the mobile's customer")
    assert profile(customer, "INSTORE")["firstName"] == "Instore"
    assert {"type": "mobile", "value": mobile} in profile(customer, "INSTORE")["identifiers"]
    assert profile(customer, "LINE")["accountId"] == SOURCE_ACCOUNT_ID
    assert stack.line_subscription(customer, SOURCE_ACCOUNT_ID) == "OPTIN"
    assert stack.customers_with(mobile) == [customer]
    merged = requests.get(f"{stack.capillary_url}/sandbox/customers/{line_only['id']}",
                          timeout=5).json()
    assert merged["mergedInto"] == customer_id and merged["profiles"] == [], dump(merged)

    before = len(stack.calls())
    again = api(stack, "POST", "/api/v1/links", body)
    assert again.json()["link_id"] == queued.json()["link_id"]
    wait_until(lambda: any(again.json()["link_id"] in line and '"outcome": "duplicate"' in line
                           for line in worker_log(stack).splitlines()),
               message="the replayed link to run")
    assert writes_since(stack, before) == [], dump(writes_since(stack, before))
    assert stack.customers_with(user) == [customer]


def issue_and_bind(stack: Stack, user: str, mobile: str) -> tuple[str, str, str]:
    """(session, nonce, LINE link token) after the brand's login bound the mobile."""
    issued = api(stack, "POST", "/api/v1/link-tokens",
                 {"channel": CHANNEL_ID, "line_user_id": user})
    assert issued.status_code == 201, issued.text
    session, page = issued.json()["session"], issued.json()["link_page_url"]
    waiting = requests.get(page, allow_redirects=False, timeout=5)
    assert waiting.status_code == 200 and "Sign in" in waiting.text
    bound = api(stack, "POST", f"/api/v1/link-sessions/{session}/bind", {"mobile": mobile})
    assert bound.status_code == 200, bound.text
    # The page's URL, forwarded or not, still sends nobody on to LINE.
    assert requests.get(page, allow_redirects=False, timeout=5).status_code == 200
    query = parse_qs(urlparse(bound.json()["account_link_url"]).query)
    return session, query["nonce"][0], query["linkToken"][0]


def finish_on_line(stack: Stack, link_token: str, nonce: str, result: str = "ok") -> dict:
    """The user completes LINE's account-link page; LINE delivers the accountLink event."""
    response = requests.post(f"{stack.line_url}/sandbox/account-link", timeout=10, json={
        "link_token": link_token, "nonce": nonce, "result": result})
    assert response.json()["delivery"]["status"] == 200, response.text
    return response.json()["event"]


def session_status(stack: Stack, session: str) -> dict:
    return api(stack, "GET", f"/api/v1/link-sessions/{session}").json()


def test_account_link_flow_through_line_attaches_the_user(stack):
    user, mobile = new_user_id(), new_mobile()
    customer_id = seed_instore(stack, mobile)
    line_only = follow_on_line(stack, user)
    session, nonce, link_token = issue_and_bind(stack, user, mobile)

    event = finish_on_line(stack, link_token, nonce)
    assert event["type"] == "accountLink" and event["source"]["userId"] == user

    [customer] = wait_until(lambda: on_one_customer(stack, user, customer_id), 30,
                            message="linked through LINE's account link")
    assert stack.line_subscription(customer, SOURCE_ACCOUNT_ID) == "OPTIN"
    assert all(c["id"] != line_only["id"] for c in stack.customers_with(user))
    status = wait_until(lambda: session_status(stack, session)["outcome"] == "linked" and
                        session_status(stack, session), message="session marked linked")
    assert status["state"] == "claimed"
    assert nonce not in worker_log(stack)  # the nonce is never logged


def test_failed_link_or_unknown_nonce_changes_nothing(stack, redis_url):
    user, mobile = new_user_id(), new_mobile()
    customer_id = seed_instore(stack, mobile)
    line_only = follow_on_line(stack, user)
    session, nonce, link_token = issue_and_bind(stack, user, mobile)
    before = len(stack.calls())

    finish_on_line(stack, link_token, nonce, result="failed")
    wait_until(lambda: session_status(stack, session)["outcome"] == "link_failed",
               message="failed link recorded")
    assert session_status(stack, session)["state"] == "failed"  # the nonce is burned
    gone = api(stack, "POST", f"/api/v1/link-sessions/{session}/bind", {"mobile": mobile})
    assert gone.status_code == 409

    other, _, token = issue_and_bind(stack, user, mobile)  # a fresh, valid LINE link token
    unknown = finish_on_line(stack, token, "nonce-linecap-never-issued-0000")
    outcomes = redis_client(database_url(redis_url, 9))
    wait_until(lambda: outcomes.get(f"linecap:event:{unknown['webhookEventId']}") ==
               "link_refused_unknown", message="unknown nonce recorded")

    assert writes_since(stack, before) == [], dump(writes_since(stack, before))
    assert [c["id"] for c in stack.customers_with(user)] == [line_only["id"]]
    assert [c["id"] for c in stack.customers_with(mobile)] == [customer_id]
    assert session_status(stack, other)["state"] == "bound"


def test_a_used_link_token_sends_no_event(stack):
    user, mobile = new_user_id(), new_mobile()
    seed_instore(stack, mobile)
    follow_on_line(stack, user)
    session, nonce, link_token = issue_and_bind(stack, user, mobile)
    finish_on_line(stack, link_token, nonce)
    again = requests.post(f"{stack.line_url}/sandbox/account-link", timeout=10, json={
        "link_token": link_token, "nonce": nonce}).json()
    assert again["event"] is None and "used" in again["page"]


def test_link_api_refuses_bad_input_with_a_clear_4xx(stack):
    bad = api(stack, "POST", "/api/v1/links",
              {"channel": CHANNEL_ID, "line_user_id": "Uxyz", "mobile": "66812345678"})
    assert bad.status_code == 400 and bad.json()["field"] == "line_user_id"
    unknown = api(stack, "POST", "/api/v1/links",
                  {"channel": "404404", "line_user_id": new_user_id(), "mobile": "66812345678"})
    assert unknown.status_code == 404 and unknown.json()["field"] == "channel"
    no_key = requests.post(stack.web_url + "/api/v1/links", json={}, timeout=5)
    assert no_key.status_code == 401


# -- linecap setup ------------------------------------------------------------------------------
def run_setup(monkeypatch, capsys, env: dict[str, str], *argv: str) -> tuple[int, list[str]]:
    for name in list(os.environ):
        if name.startswith(("CAPILLARY_", "LINE_", "LINECAP_", "REDIS_")):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    parser = argparse.ArgumentParser(prog="linecap")
    setup.add_parser(parser.add_subparsers(required=True))
    args = parser.parse_args(["setup", *argv])
    code = args.handler(args)
    return code, capsys.readouterr().out.splitlines()


def line_of(lines: list[str], check: str) -> str:
    return next(line for line in lines if f"  {check}  " in line)


def test_setup_check_passes_with_a_reachable_webhook(stack, monkeypatch, capsys):
    code, lines = run_setup(monkeypatch, capsys, stack.env(), "check", "--base-url",
                            stack.web_url)
    assert code == 0, "\n".join(lines)
    for check in ("credentials", "access token", "webhook endpoint", "webhook reachable",
                  "source account id"):
        assert line_of(lines, check).startswith("PASS"), "\n".join(lines)


def test_setup_check_reports_what_to_fix(fresh_stack, monkeypatch, capsys):
    stack = fresh_stack()
    code, lines = run_setup(monkeypatch, capsys, stack.env(), "check")
    assert code == 1
    endpoint = line_of(lines, "webhook endpoint")
    assert endpoint.startswith("FAIL") and "not set" in endpoint, "LINE's 404, not a token"
    assert f"fix: linecap setup webhook --channel {CHANNEL_ID} --url" in endpoint
    assert line_of(lines, "webhook reachable").startswith("FAIL")
    assert line_of(lines, "access token").startswith("PASS")
    redelivery = line_of(lines, "webhook redelivery")
    assert redelivery.startswith("WARN") and "Use webhook redelivery" in redelivery

    wrong_token = json.loads(channels_json())
    wrong_token[0]["access_token"] = "not-the-channel-token"
    code, lines = run_setup(monkeypatch, capsys,
                            {**stack.env(), "LINE_CHANNELS": json.dumps(wrong_token)}, "check")
    token = line_of(lines, "access token")
    assert code == 1 and token.startswith("FAIL") and "refused" in token
    assert "fix: issue a long-lived channel access token" in token
    assert "not-the-channel-token" not in "\n".join(lines)

    requests.post(f"{stack.capillary_url}/sandbox/accounts",
                  json={"valid_accounts": ["another-account"]}, timeout=5).raise_for_status()
    code, lines = run_setup(monkeypatch, capsys, stack.env(), "check")
    account = line_of(lines, "source account id")
    assert account.startswith("FAIL") and "fix: set source_account_id" in account


def test_setup_check_says_whether_lookups_by_line_id_work(fresh_stack, monkeypatch, capsys):
    strict = fresh_stack(org="strict")
    code, lines = run_setup(monkeypatch, capsys, strict.env(), "check")
    lookup = line_of(lines, "lookup by LINE id")
    assert lookup.startswith("WARN") and "8013" in lookup and "externalId" in lookup
    rules = line_of(lines, "registration without a mobile")
    assert rules.startswith("WARN") and "--probe-registration" in rules
    code, lines = run_setup(monkeypatch, capsys, strict.env(), "check", "--probe-registration")
    probed = line_of(lines, "registration without a mobile")
    assert probed.startswith("FAIL") and "LINECAP_UNKNOWN_USER_STRATEGY=park" in probed
    assert strict.customers() == [], "the strict org refused the probe: nothing was created"
    code, lines = run_setup(monkeypatch, capsys,
                            {**strict.env(), "CAPILLARY_LINE_LOOKUP": "line"}, "check")
    assert line_of(lines, "lookup by LINE id").startswith("FAIL")


def test_setup_webhook_on_the_real_platforms_terms(fresh_stack, monkeypatch, capsys):
    """https only; the new URL shows only after a while (the command waits for it and tests
    the new URL by name); nothing answering is named as such; the test API's 60 calls an
    hour, once used up, are not mistaken for a token problem."""
    stack = fresh_stack(endpoint_propagation_seconds=2)
    http = f"http://127.0.0.1:8000/webhooks/line/{CHANNEL_ID}"
    with pytest.raises(SystemExit) as refused:
        run_setup(monkeypatch, capsys, stack.env(), "webhook", "--url", http)
    assert refused.value.code == 2 and "only https" in capsys.readouterr().err

    closed = f"https://127.0.0.1:{free_port()}/webhooks/line/{CHANNEL_ID}"
    code, lines = run_setup(monkeypatch, capsys, stack.env(), "webhook", "--url", closed,
                            "--wait", "30")
    assert code == 1
    assert any(f"set to {closed}" in line for line in lines), "\n".join(lines)
    reachable = next(line for line in lines if "webhook reachable" in line)
    assert reachable.startswith("FAIL") and "nothing answered" in reachable
    assert "make the receiver reachable" in reachable

    for _ in range(60):  # use up the hour's webhook tests
        requests.post(f"{stack.line_url}/v2/bot/channel/webhook/test", json={},
                      headers={"Authorization": f"Bearer {ACCESS_TOKEN}"}, timeout=10)
    code, lines = run_setup(monkeypatch, capsys, stack.env(), "check")
    quota = line_of(lines, "webhook reachable")
    assert quota.startswith("WARN") and "60 calls an hour" in quota
    assert line_of(lines, "access token").startswith("PASS")


def test_setup_check_fails_on_refused_capillary_credentials(fresh_stack, monkeypatch, capsys):
    stack = fresh_stack()
    code, lines = run_setup(monkeypatch, capsys,
                            {**stack.env(), "CAPILLARY_PASSWORD": "wrong-password"}, "check")
    credentials = line_of(lines, "credentials")
    assert code == 1 and credentials.startswith("FAIL") and "fix: set CAPILLARY_USERNAME" in \
        credentials
    assert "wrong-password" not in "\n".join(lines)
