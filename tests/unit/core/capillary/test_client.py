"""The Capillary client against the sandbox over a real socket: auth, retries, error classes."""

from __future__ import annotations

import time

import pytest

from core.capillary.client import CapillaryClient, Subscription
from core.errors import (
    AlreadyRegisteredError,
    ComeBackLater,
    ConfigurationError,
    CredentialsError,
    MergedAwayError,
    TransientError,
)
from core.store.rate_budget import SharedRateLimiter
from tests.helpers import make_settings

INSTORE = {"source": "INSTORE", "identifiers": [{"type": "mobile", "value": "66812345678"}]}


def client_for(sandbox, limiter=None, **env) -> CapillaryClient:
    settings = make_settings(CAPILLARY_BASE_URL=sandbox.url, CAPILLARY_TIMEOUT_SECONDS="1",
                             **env)
    return CapillaryClient.from_settings(settings, limiter)


LINE = {"source": "LINE", "accountId": "acc",
        "identifiers": [{"type": "line", "value": "U" + "a" * 32},
                        {"type": "externalId", "value": "line_U" + "a" * 32},
                        {"type": "mobile", "value": "66812345678"}]}


def test_register_instore_then_line_combines_on_one_customer(sandbox):
    client = client_for(sandbox)
    first = client.add_customer(INSTORE, "non_loyalty")
    line = client.add_customer(LINE, "non_loyalty")
    assert line.customer_id == first.customer_id and line.combined and 8050 in line.warnings
    with pytest.raises(AlreadyRegisteredError):
        client.add_customer(INSTORE, "non_loyalty")
    found = client.lookup("LINE", "externalId", "line_U" + "a" * 32, account_id="acc")
    assert found["id"] == first.customer_id
    assert [p["source"] for p in found["profiles"]] == ["LINE"], "a lookup shows its source"
    everything = client.customer(first.customer_id)
    assert sorted(p["source"] for p in everything["profiles"]) == ["INSTORE", "LINE"]
    assert client.lookup("LINE", "externalId", "line_U" + "b" * 32, account_id="acc") is None
    assert client.customer(999) is None


def test_subscription_round_trip_with_an_org_unit(sandbox):
    client = client_for(sandbox)
    customer = client.add_customer(INSTORE, "non_loyalty").customer_id
    client.set_subscription(customer, Subscription("LINE", "BULK", "acc", org_unit_id=7), True,
                            "LINE follow")
    [sub] = client.get_subscriptions(customer)
    assert (sub["type"], sub["accountId"]) == ("OPTIN", "acc")
    [call] = [c for c in sandbox.calls() if c["path"].endswith("/subscriptions")][:1]
    assert call["body"]["subscriptions"][0]["orgUnitId"] == 7


def test_configuration_errors_are_permanent(sandbox):
    client = client_for(sandbox)
    with pytest.raises(ConfigurationError) as info:
        client.add_customer({"source": "LINE", "identifiers": LINE["identifiers"]},
                            "non_loyalty")
    assert info.value.codes == (8045,)


def test_a_merge_returns_the_survivor(sandbox):
    client = client_for(sandbox)
    member = client.add_customer(INSTORE, "non_loyalty").customer_id
    other = client.add_customer({"source": "INSTORE", "identifiers": [
        {"type": "mobile", "value": "66800000009"}]}, "non_loyalty").customer_id
    survivor = client.change_identifier(other, "LINE", "acc", add=[
        {"type": "mobile", "value": "66812345678"}])
    assert survivor == member
    with pytest.raises(MergedAwayError):
        client.customer(other)


def test_bad_basic_credentials_are_permanent(sandbox):
    with pytest.raises(CredentialsError):
        client_for(sandbox, CAPILLARY_PASSWORD="wrong").lookup("INSTORE", "mobile", "1234")


def test_oauth_token_is_cached_and_refreshed_once_on_401(sandbox):
    client = client_for(sandbox, CAPILLARY_OAUTH_KEY="sandbox-key",
                        CAPILLARY_OAUTH_SECRET="sandbox-secret")
    client.lookup("INSTORE", "mobile", "66800000001")
    client.lookup("INSTORE", "mobile", "66800000002")
    assert [c["path"] for c in sandbox.calls()].count("/v3/oauth/token/generate") == 1
    client.transport._auth._token = "expired-or-revoked"  # Capillary forgot our token
    client.lookup("INSTORE", "mobile", "66800000003")
    paths = [c["path"] for c in sandbox.calls()]
    assert paths.count("/v3/oauth/token/generate") == 2
    assert [c["status"] for c in sandbox.calls()][-2:] == [200, 400]


def test_oauth_bad_secret_is_a_credentials_error(sandbox):
    client = client_for(sandbox, CAPILLARY_OAUTH_KEY="sandbox-key", CAPILLARY_OAUTH_SECRET="no")
    with pytest.raises(CredentialsError) as info:
        client.lookup("INSTORE", "mobile", "66800000001")
    assert "no" not in str(info.value).split()


def test_5xx_is_retried_quickly_inside_the_call(sandbox):
    client = client_for(sandbox)
    sandbox.faults(fail_next=[{"status": 503, "path_contains": "/v2/customers", "count": 2}])
    assert client.add_customer(INSTORE, "non_loyalty").customer_id
    assert [c["status"] for c in sandbox.calls()] == [503, 503, 200]


def test_persistent_5xx_becomes_a_transient_error(sandbox):
    client = client_for(sandbox)
    sandbox.faults(fail_next=[{"status": 500, "path_contains": "/v2/customers", "count": 5}])
    with pytest.raises(TransientError):
        client.add_customer(INSTORE, "non_loyalty")
    assert len(sandbox.calls()) == 3


def test_429_with_long_retry_after_is_handed_to_the_task(sandbox):
    client = client_for(sandbox)
    sandbox.faults(rate_429=1.0, retry_after_header=True, retry_after_seconds=30)
    with pytest.raises(TransientError) as info:
        client.lookup("INSTORE", "mobile", "66800000001")
    assert info.value.retry_after == 30
    assert len(sandbox.calls()) == 1, "a long Retry-After must not be waited out inline"


def test_timeout_is_transient(sandbox):
    client = client_for(sandbox)
    sandbox.faults(fail_next=[{"sleep_ms": 1500, "path_contains": "/v2/customers", "count": 3}])
    started = time.monotonic()
    with pytest.raises(TransientError, match="timed out"):
        client.lookup("INSTORE", "mobile", "66800000001")
    assert time.monotonic() - started < 8


def test_every_attempt_takes_from_the_shared_budget(sandbox, fake_redis):
    limiter = SharedRateLimiter(fake_redis, 3, key="budget", max_inline_wait=0)
    client = client_for(sandbox, limiter=limiter)
    sandbox.faults(fail_next=[{"status": 503, "path_contains": "/v2/customers", "count": 2}])
    client.lookup("INSTORE", "mobile", "66800000001")
    with pytest.raises(ComeBackLater):
        client.lookup("INSTORE", "mobile", "66800000002")
    assert len(sandbox.calls()) == 3


def test_session_reads_proxy_and_ca_settings_once(monkeypatch):
    from core.capillary.client import capillary_session

    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/brand-ca.pem")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    session = capillary_session("https://eu.api.capillarytech.com")
    assert session.proxies.get("https") == "http://proxy.internal:3128"
    assert session.verify == "/etc/ssl/brand-ca.pem" and session.trust_env is False
    monkeypatch.setenv("NO_PROXY", "capillarytech.com")
    assert capillary_session("https://eu.api.capillarytech.com").proxies == {}
