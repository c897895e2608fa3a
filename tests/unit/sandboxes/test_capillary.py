"""Capillary sandbox behaviour, through Flask's test client (no sockets)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from sandboxes.capillary import SandboxConfig, create_sandbox_app
from sandboxes.capillary import pipeline as pipeline_module
from sandboxes.capillary.auth import basic_header
from sandboxes.capillary.calllog import max_in_window

AUTH = {"Authorization": basic_header("sandbox-till", "sandbox-password")}
LINE_A = "U" + "a" * 32
LINE_B = "U" + "b" * 32
LINE_C = "U" + "c" * 32
MOBILE = "66812345678"
CUSTOMERS = "/v2/customers"
LOOKUP = "/v2/customers/lookup/customerDetails"


class FakeClock:
    """Controllable seconds clock shared by tokens, rate limit and call timestamps."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make_client(clock: FakeClock, **config: Any):
    return create_sandbox_app(SandboxConfig(**config), clock=clock).test_client()


@pytest.fixture
def client(clock: FakeClock):
    return make_client(clock)


def instore(mobile: str = MOBILE, **extra: Any) -> dict[str, Any]:
    return {
        "source": "INSTORE",
        "identifiers": [{"type": "mobile", "value": mobile}],
        "firstName": "Somchai",
        "lastName": "Jaidee",
        **extra,
    }


def line(line_id: str = LINE_A, mobile: str | None = None, account: str | None = "acc1"):
    identifiers = [{"type": "line", "value": line_id}]
    if mobile:
        identifiers.append({"type": "mobile", "value": mobile})
    profile: dict[str, Any] = {
        "source": "LINE",
        "identifiers": identifiers,
        "commChannels": [{"type": "line", "value": line_id, "primary": True, "subscribed": True}],
    }
    if account is not None:
        profile["accountId"] = account
    return profile


def add(client, profile: dict[str, Any], headers: dict[str, str] | None = None):
    body = {"loyaltyInfo": {"loyaltyType": "non_loyalty"}, "profiles": [profile]}
    return client.post(CUSTOMERS, json=body, headers=AUTH if headers is None else headers)


def lookup(client, **query: str):
    return client.get(LOOKUP, query_string=query, headers=AUTH)


def error_codes(response) -> list[int]:
    return [e["code"] for e in response.get_json().get("errors") or []]


def subscription(kind: str, account: str | None = "acc1", priority: str = "BULK"):
    entry = {"channel": "LINE", "priority": priority, "type": kind, "sourceName": "LINE"}
    if account is not None:
        entry["accountId"] = account
    return entry


def sub_body(*entries: dict[str, Any]) -> dict[str, Any]:
    return {
        "communicationId": -1,
        "campaignId": -1,
        "reason": "test",
        "scope": {"scope": "USER", "subScope": "NONE"},
        "subscriptions": list(entries),
    }


def customers(client) -> list[dict[str, Any]]:
    return client.get("/sandbox/customers").get_json()["customers"]


# -- auth --------------------------------------------------------------------------------------


def test_basic_auth_needs_md5_of_password(client):
    assert add(client, instore()).status_code == 200
    plain = "Basic " + __import__("base64").b64encode(b"sandbox-till:sandbox-password").decode()
    for headers in ({}, {"Authorization": plain}, {"Authorization": "Basic !!notbase64"}):
        response = add(client, instore("66800000001"), headers=headers)
        assert response.status_code == 401
        assert response.get_json() == {
            "errors": [{"status": False, "code": 401, "message": "Invalid credentials"}]
        }
    assert len(customers(client)) == 1


def test_oauth_token_flow_and_expiry(client, clock):
    bad = client.post("/v3/oauth/token/generate", json={"key": "sandbox-key", "secret": "no"})
    assert bad.status_code == 401
    assert error_codes(bad) == [401]
    good = client.post(
        "/v3/oauth/token/generate", json={"key": "sandbox-key", "secret": "sandbox-secret"}
    )
    assert good.status_code == 200
    data = good.get_json()
    assert data["errors"] is None and data["data"]["ttlSeconds"] == 300
    token_headers = {"X-CAP-API-OAUTH-TOKEN": data["data"]["accessToken"]}
    assert add(client, instore(), headers=token_headers).status_code == 200
    assert (
        add(client, instore("66800000002"), headers={"X-CAP-API-OAUTH-TOKEN": "x"}).status_code
        == 401
    )
    clock.advance(301)
    assert add(client, instore("66800000003"), headers=token_headers).status_code == 401


def test_credentials_can_come_from_env():
    config = SandboxConfig.from_env(
        {"CAPILLARY_SANDBOX_USERNAME": "till2", "CAPILLARY_SANDBOX_PASSWORD": "pw2"}
    )
    client = create_sandbox_app(config).test_client()
    assert add(client, instore()).status_code == 401
    headers = {"Authorization": basic_header("till2", "pw2")}
    assert add(client, instore(), headers=headers).status_code == 200
    assert config.oauth_key == "sandbox-key"


# -- the org's switches (what varies by org; the documented rules are in tests/contract) -----


def set_org(client, **switches: Any):
    response = client.post("/sandbox/org", json=switches)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def external_only(value: str = "line_" + LINE_A, source: str = "INSTORE") -> dict[str, Any]:
    profile: dict[str, Any] = {"source": source,
                               "identifiers": [{"type": "externalId", "value": value}]}
    if source == "LINE":
        profile["accountId"] = "acc1"
    return profile


def test_the_strict_org_needs_a_mobile_and_non_loyalty_needs_mobile_or_email(client):
    assert error_codes(add(client, external_only())) == [1006]
    set_org(client, required_identifiers=[])
    assert error_codes(add(client, external_only())) == [1045]
    body = {"loyaltyInfo": {"loyaltyType": "loyalty"}, "profiles": [external_only()]}
    assert client.post(CUSTOMERS, json=body, headers=AUTH).status_code == 200
    set_org(client, required_identifiers=["email"])
    assert error_codes(add(client, instore("66800000001"))) == [1039]
    assert customers(client)[0]["loyaltyInfo"] == {"loyaltyType": "loyalty"}


def test_a_non_loyalty_profile_cannot_convert_a_loyalty_customer(client):
    body = {"loyaltyInfo": {"loyaltyType": "loyalty"}, "profiles": [instore()]}
    assert client.post(CUSTOMERS, json=body, headers=AUTH).status_code == 200
    assert error_codes(add(client, line(LINE_A, mobile=MOBILE))) == [1046]
    loyal = {"loyaltyInfo": {"loyaltyType": "loyalty"}, "profiles": [line(LINE_A, MOBILE)]}
    assert client.post(CUSTOMERS, json=loyal, headers=AUTH).get_json()["createdId"] == 1000001


def test_the_external_id_format_switch_refuses_on_add_and_change_identifier(client):
    set_org(client, required_identifiers=[], external_id_pattern=r"CRM-[0-9]+")
    assert error_codes(add(client, {**external_only("line_x"),
                                    "identifiers": [{"type": "mobile", "value": MOBILE},
                                                    {"type": "externalId", "value": "x"}]})
                       ) == [8064]
    created = add(client, instore()).get_json()["createdId"]
    refused = client.post(f"{CUSTOMERS}/{created}/changeIdentifier?source=INSTORE",
                          json={"add": [{"type": "externalId", "value": "line_x"}]},
                          headers=AUTH)
    assert error_codes(refused) == [8064]


def test_lookup_by_line_id_is_refused_until_the_org_allows_it(client):
    add(client, line(LINE_A, mobile=MOBILE))
    query = {"source": "LINE", "accountId": "acc1", "identifierName": "line",
             "identifierValue": LINE_A}
    assert error_codes(lookup(client, **query)) == [8013]
    set_org(client, lookup_identifiers=["mobile", "line"])
    assert lookup(client, **query).get_json()["id"] == 1000001
    by_external = {**query, "identifierName": "externalId"}
    assert error_codes(lookup(client, **by_external)) == [8013]


def test_subscriptions_need_an_org_unit_and_a_configured_channel(client):
    created = add(client, instore()).get_json()["createdId"]
    path = f"{CUSTOMERS}/{created}/subscriptions"
    missing = client.post(path, json=sub_body(subscription("OPTIN")), headers=AUTH)
    assert missing.status_code == 403
    assert "orgUnitId is mandatory" in missing.get_json()["errors"][0]["message"]
    with_unit = {**subscription("OPTIN"), "orgUnitId": 100}
    assert client.post(path, json=sub_body(with_unit), headers=AUTH).status_code == 200
    set_org(client, configured_channels=["SMS", "EMAIL"])
    assert error_codes(client.post(path, json=sub_body(with_unit), headers=AUTH)) == [1109]
    set_org(client, subscription_requires_org_unit=False, configured_channels=["LINE"])
    assert client.post(path, json=sub_body(subscription("OPTOUT")),
                       headers=AUTH).status_code == 200


def test_a_budget_per_api_group(client, clock):
    set_org(client, budgets={"lookup": 2})
    query = {"source": "INSTORE", "identifierName": "mobile", "identifierValue": MOBILE}
    assert [lookup(client, **query).status_code for _ in range(3)][-1] == 429
    assert add(client, instore()).status_code == 200, "other groups keep their own budget"
    clock.advance(61)
    assert lookup(client, **query).status_code == 200


def test_org_switches_are_validated_and_shown(client):
    assert client.post("/sandbox/org", json={"bogus": 1}).status_code == 400
    assert client.post("/sandbox/org", json={"budgets": {"lookup": 0}}).status_code == 400
    assert client.post("/sandbox/org", json={"required_identifiers": "mobile"}).status_code == 400
    shown = client.get("/sandbox/org").get_json()
    assert shown["required_identifiers"] == ["mobile"] and "line" not in shown[
        "lookup_identifiers"]


def test_org_specs_name_a_profile_or_give_switches():
    from sandboxes.capillary.org import LENIENT, STRICT, org_from_spec

    assert org_from_spec(None) is STRICT and org_from_spec("lenient") is LENIENT
    custom = org_from_spec('{"profile": "lenient", "bulk_limit": 3}')
    assert custom.bulk_limit == 3 and "line" in custom.lookup_identifiers
    with pytest.raises(ValueError):
        org_from_spec("sloppy")


def test_concurrent_registrations_of_one_identifier_have_one_winner(clock):
    app = create_sandbox_app(SandboxConfig(), clock=clock)
    statuses: list[int] = []

    def register() -> None:
        statuses.append(add(app.test_client(), line(LINE_A, mobile=MOBILE)).status_code)

    threads = [threading.Thread(target=register) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200] + [400] * 7
    assert len(app.test_client().get("/sandbox/customers").get_json()["customers"]) == 1


# -- rate limit and faults ---------------------------------------------------------------------


def test_rpm_limit_gives_429_with_retry_after(clock):
    client = make_client(clock, rpm_limit=3)
    for i in range(3):
        assert add(client, instore(f"6680000000{i}")).status_code == 200
        clock.advance(1)
    limited = add(client, instore("66800000009"))
    assert limited.status_code == 429
    assert limited.get_json() == {
        "errors": [{"status": False, "code": 429, "message": "Rate limit exceeded"}]
    }
    assert int(limited.headers["Retry-After"]) >= 1
    assert len(customers(client)) == 3
    clock.advance(57.5)  # only the first call has left the window; the 429 never counted
    assert add(client, instore("66800000009")).status_code == 200
    assert add(client, instore("66800000008")).status_code == 429

    client.post("/sandbox/faults", json={"retry_after_header": False})
    assert "Retry-After" not in add(client, instore("66800000007")).headers
    stats = client.get("/sandbox/stats").get_json()
    assert stats["max_calls_in_any_60s_window"] == 3


def test_injected_5xx_does_not_write(clock):
    client = make_client(clock, error_rate=1.0, error_statuses=(503,))
    response = add(client, instore())
    assert response.status_code == 503
    assert error_codes(response) == [503]
    assert customers(client) == []
    client.post("/sandbox/faults", json={"error_rate": 0.0})
    assert add(client, instore()).get_json()["createdId"] == 1000001


def test_injected_429_probability(clock):
    client = make_client(clock, rate_429=1.0, retry_after_seconds=7)
    response = add(client, instore())
    assert response.status_code == 429 and response.headers["Retry-After"] == "7"
    assert customers(client) == []


def test_random_faults_are_seeded(clock):
    def run() -> list[int]:
        client = make_client(clock, error_rate=0.5, seed=42)
        return [add(client, instore(f"668000000{i:02d}")).status_code for i in range(30)]

    first = run()
    assert first == run()
    assert {200, 500, 502, 503} >= set(first) and 200 in first and len(set(first)) > 1


def test_fail_next_after_write_commits_but_errors(client):
    client.post(
        "/sandbox/faults",
        json={
            "fail_next": [
                {
                    "status": 504,
                    "path_contains": "/v2/customers",
                    "method": "POST",
                    "after_write": True,
                }
            ]
        },
    )
    response = add(client, instore())
    assert response.status_code == 504
    assert len(customers(client)) == 1  # committed anyway
    retry = add(client, instore())
    assert error_codes(retry) == [8006]  # the client's retry meets its own write
    assert client.get("/sandbox/faults").get_json()["fail_next"] == []


def test_fail_next_before_write_counts_and_filters(client):
    client.post(
        "/sandbox/faults",
        json={
            "fail_next": [
                {"status": 503, "path_contains": "/v2/customers", "method": "POST", "count": 2}
            ]
        },
    )
    absent = lookup(client, source="ALL", identifierName="mobile", identifierValue=MOBILE)
    assert error_codes(absent) == [8015]  # GET does not match the entry
    assert add(client, instore()).status_code == 503
    assert add(client, instore()).status_code == 503
    assert customers(client) == []
    assert add(client, instore()).status_code == 200


def test_latency_and_sleep_ms(client, monkeypatch):
    slept: list[float] = []
    monkeypatch.setattr(pipeline_module.time, "sleep", slept.append)
    client.post("/sandbox/faults", json={"latency_ms": 20, "fail_next": [{"sleep_ms": 3000}]})
    assert add(client, instore()).status_code == 200
    assert add(client, instore("66800000001")).status_code == 200
    assert slept == [3.02, 0.02]


def test_bad_fault_update_is_rejected(client):
    assert client.post("/sandbox/faults", json={"error_rate": 2}).status_code == 400
    assert client.post("/sandbox/faults", json={"bogus": 1}).status_code == 400
    assert client.post("/sandbox/faults", json={"fail_next": [{"count": 1}]}).status_code == 400
    assert client.get("/sandbox/faults").get_json()["error_rate"] == 0.0


# -- call log, stats, reset --------------------------------------------------------------------


def test_call_log_records_every_call_in_order(clock):
    client = make_client(clock, rpm_limit=2)
    add(client, instore())
    add(client, line(LINE_A, MOBILE), headers={})
    add(client, line(LINE_A, MOBILE))
    add(client, line(LINE_B, MOBILE))  # 429: the window holds 2 accepted calls
    clock.advance(61)
    client.get("/v2/nowhere", headers=AUTH)
    calls = client.get("/sandbox/calls").get_json()["calls"]
    assert [c["seq"] for c in calls] == [1, 2, 3, 4, 5]
    assert [c["status"] for c in calls] == [200, 401, 200, 429, 404]
    assert [c["source"] for c in calls[:4]] == ["INSTORE", "LINE", "LINE", "LINE"]
    assert calls[0]["method"] == "POST" and calls[0]["path"] == CUSTOMERS
    assert calls[0]["body"]["profiles"][0]["identifiers"][0]["value"] == MOBILE
    assert [c["metered"] for c in calls] == [True, False, True, False, True]
    later = client.get("/sandbox/calls", query_string={"since": 3}).get_json()["calls"]
    assert [c["seq"] for c in later] == [4, 5]


def test_stats_counts_and_max_window(client, clock):
    for i in range(3):
        add(client, instore(f"6680000000{i}"))
        clock.advance(10)
    clock.advance(60)
    add(client, instore("66800000005"))
    client.get(f"{CUSTOMERS}/1000001/subscriptions", headers=AUTH)
    client.get(f"{CUSTOMERS}/1000002/subscriptions", headers=AUTH)
    stats = client.get("/sandbox/stats").get_json()
    assert stats["max_calls_in_any_60s_window"] == 3
    assert stats["total_calls"] == 6 and stats["customers"] == 4
    rows = {(r["method"], r["path"], r["status"]): r["count"] for r in stats["by_endpoint"]}
    assert rows[("POST", CUSTOMERS, 200)] == 4
    assert rows[("GET", "/v2/customers/{customer_id}/subscriptions", 200)] == 2


def test_max_in_window_is_half_open():
    assert max_in_window([0, 59.9, 60, 119.9]) == 2
    assert max_in_window([5, 1, 3, 2, 70]) == 4
    assert max_in_window([]) == 0


def test_reset_restores_startup_state(clock):
    client = make_client(clock, valid_accounts={"acc1"})
    add(client, instore())
    client.post("/sandbox/faults", json={"error_rate": 1.0, "fail_next": [{"status": 500}]})
    client.post("/sandbox/accounts", json={"valid_accounts": None})
    assert client.post("/sandbox/reset").status_code == 200
    assert customers(client) == []
    assert client.get("/sandbox/calls").get_json()["calls"] == []
    faults = client.get("/sandbox/faults").get_json()
    assert faults["error_rate"] == 0.0 and faults["fail_next"] == []
    assert error_codes(add(client, line(account="acc2"))) == [8011]
    assert add(client, instore()).get_json()["createdId"] == 1000001


def test_healthz_and_control_need_no_auth(client):
    assert client.get("/healthz").status_code == 200
    assert client.get("/sandbox/stats").status_code == 200
    assert client.get("/sandbox/customers/123").status_code == 404
    assert client.get("/sandbox/calls").get_json()["calls"] == []
