"""The LINE Messaging API behaviours linecap relies on (tests/contract/rules.py), against the
fake LINE platform by default and a real channel with --line-live (see conftest.py)."""

from __future__ import annotations

import secrets

import pytest

from tests.contract import rules


def test_the_bot_answers_with_its_token_and_refuses_a_wrong_one(line_platform):
    good = line_platform.call("GET", "/v2/bot/info")
    rules.LINE_AUTH.check(good.status == 200 and good.body.get("userId"), good.body)
    rules.LINE_REQUEST_ID.check(bool(good.headers.get("X-Line-Request-Id")), good.headers)
    bad = line_platform.call("GET", "/v2/bot/info", token="not-a-token")
    rules.LINE_AUTH.check(bad.status == 401, (bad.status, bad.body))
    rules.LINE_REQUEST_ID.check(bool(bad.headers.get("X-Line-Request-Id")), bad.headers)


def test_the_profile_of_a_stranger_is_404(line_platform):
    answer = line_platform.call("GET", f"/v2/bot/profile/U{secrets.token_hex(16)}")
    rules.LINE_PROFILE.check(answer.status == 404, (answer.status, answer.body))


def test_the_webhook_endpoint_is_read_or_404_when_unset(line_platform):
    answer = line_platform.call("GET", "/v2/bot/channel/webhook/endpoint")
    shaped = answer.status == 200 and {"endpoint", "active"} <= set(answer.body)
    rules.LINE_ENDPOINT_GET.check(shaped or answer.status == 404, (answer.status, answer.body))


def test_followers_are_listed_or_refused_for_unverified_accounts(line_platform):
    answer = line_platform.call("GET", "/v2/bot/followers/ids", params={"limit": 1})
    listed = answer.status == 200 and isinstance(answer.body.get("userIds"), list)
    rules.LINE_FOLLOWERS.check(listed or answer.status == 403, (answer.status, answer.body))


def test_a_cursor_line_did_not_issue_is_refused(line_platform):
    """The reconciliation reads an expired cursor's refusal as "start the list over"."""
    first = line_platform.call("GET", "/v2/bot/followers/ids", params={"limit": 1})
    if first.status == 403:
        pytest.skip("this account has no follower list (not verified or premium)")
    answer = line_platform.call("GET", "/v2/bot/followers/ids",
                                params={"limit": 1, "start": "linecap-contract-" + "x" * 24})
    rules.LINE_FOLLOWERS_CURSOR.check(answer.status == 400, (answer.status, answer.body))


def test_an_http_webhook_endpoint_is_refused(line_platform):
    line_platform.require_writes()
    answer = line_platform.call("PUT", "/v2/bot/channel/webhook/endpoint",
                                body={"endpoint": "http://example.com/webhooks/line"})
    rules.LINE_ENDPOINT_HTTPS.check(answer.status == 400, (answer.status, answer.body))


def test_testing_an_endpoint_nothing_answers(line_platform):
    line_platform.require_writes()
    answer = line_platform.call("POST", "/v2/bot/channel/webhook/test",
                                body={"endpoint": "https://127.0.0.1:9/webhooks/line"})
    rules.LINE_WEBHOOK_TEST.check(
        answer.status == 200 and answer.body.get("success") is False
        and int(answer.body.get("statusCode", 1)) <= 0, (answer.status, answer.body))
