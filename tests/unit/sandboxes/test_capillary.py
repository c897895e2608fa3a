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


# -- add customer ------------------------------------------------------------------------------


def test_instore_then_line_with_shared_mobile_combines(client):
    first = add(client, instore())
    assert first.status_code == 200
    created = first.get_json()
    assert created == {"createdId": 1000001, "warnings": [], "sideEffects": []}

    second = add(client, line(LINE_A, mobile=MOBILE))
    assert second.status_code == 200
    body = second.get_json()
    assert body["createdId"] == 1000001
    assert body["warnings"] == [
        {"status": True, "code": 8050, "message": "Same customer found in other sources, combining"}
    ]
    [customer] = customers(client)
    assert [(p["source"], p["accountId"]) for p in customer["profiles"]] == [
        ("INSTORE", ""),
        ("LINE", "acc1"),
    ]
    # commChannels with subscribed: true do not create subscriptions.
    assert customer["subscriptions"] == []


def test_line_id_is_not_a_shared_identifier(client):
    add(client, line(LINE_A, account="acc1"))
    other = add(client, line(LINE_A, account="acc2"))  # unique per account, never combined
    assert other.status_code == 200
    assert other.get_json()["createdId"] == 1000002
    assert other.get_json()["warnings"] == []


def test_same_identifier_twice_in_one_source_is_1014(clock):
    client = make_client(clock)
    add(client, instore(firstName="First"))
    again = add(client, instore(firstName="Second"))
    assert again.status_code == 400
    assert error_codes(again) == [1014]
    [customer] = customers(client)
    assert customer["profiles"][0]["firstName"] == "First"  # never updated

    client200 = make_client(clock, not_found_status=200)
    add(client200, line(LINE_A))
    dup = add(client200, line(LINE_A))
    assert dup.status_code == 200 and error_codes(dup) == [1014]


def test_two_customers_matching_is_1033(client):
    add(client, instore(MOBILE))
    add(client, {"source": "INSTORE", "identifiers": [{"type": "email", "value": "a@b.co"}]})
    profile = line(LINE_A, mobile=MOBILE)
    profile["identifiers"].append({"type": "email", "value": "a@b.co"})
    response = add(client, profile)
    assert error_codes(response) == [1033]
    assert len(customers(client)) == 2


def test_line_account_rules(clock):
    client = make_client(clock, valid_accounts={"acc1"})
    missing = add(client, line(account=None))
    assert error_codes(missing) == [8045] and missing.status_code == 400
    wrong = add(client, line(account="other"))
    assert error_codes(wrong) == [8011]
    assert add(client, line(account="acc1")).status_code == 200
    client.post("/sandbox/accounts", json={"valid_accounts": ["other"]})
    assert error_codes(add(client, line(LINE_B, account="acc1"))) == [8011]
    client.post("/sandbox/accounts", json={"valid_accounts": None})
    assert add(client, line(LINE_B, account="anything")).status_code == 200
    # INSTORE is single-account: accountId not needed.
    assert add(client, instore()).status_code == 200


@pytest.mark.parametrize(
    ("profile", "code"),
    [
        ({"source": "MYSPACE", "identifiers": [{"type": "mobile", "value": MOBILE}]}, 1101),
        ({"source": "INSTORE", "identifiers": []}, 1001),
        ({"source": "INSTORE"}, 1001),
        ({"source": "INSTORE", "identifiers": [{"type": "mobile", "value": "12ab"}]}, 1004),
        ({"source": "INSTORE", "identifiers": [{"type": "mobile", "value": "1234567"}]}, 1004),
        ({"source": "INSTORE", "identifiers": [{"type": "shoe", "value": "42"}]}, 1004),
        (
            {"source": "LINE", "accountId": "a", "identifiers": [{"type": "line", "value": "U1"}]},
            1004,
        ),
        ({"source": "INSTORE", "identifiers": [{"type": "email", "value": "nope"}]}, 1004),
    ],
)
def test_invalid_input_is_400(client, profile, code):
    response = add(client, profile)
    assert response.status_code == 400
    assert error_codes(response) == [code]
    assert customers(client) == []


def test_non_json_body_is_invalid_input(client):
    response = client.post(CUSTOMERS, data="nope", headers=AUTH)
    assert response.status_code == 400 and error_codes(response) == [1001]


def test_concurrent_registrations_of_one_identifier_have_one_winner(clock):
    app = create_sandbox_app(SandboxConfig(), clock=clock)
    statuses: list[int] = []

    def register() -> None:
        statuses.append(add(app.test_client(), line(LINE_A)).status_code)

    threads = [threading.Thread(target=register) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200] + [400] * 7
    assert len(app.test_client().get("/sandbox/customers").get_json()["customers"]) == 1


# -- lookup ------------------------------------------------------------------------------------


def test_lookup_found_not_found_and_wrong_source(client):
    add(client, instore())
    add(client, line(LINE_A, mobile=MOBILE))
    found = lookup(
        client, source="LINE", accountId="acc1", identifierName="line", identifierValue=LINE_A
    )
    assert found.status_code == 200
    body = found.get_json()
    assert body["id"] == 1000001 and body["errors"] is None and body["warnings"] == []
    assert body["loyaltyInfo"] == {"loyaltyType": "non_loyalty"}
    assert {p["source"] for p in body["profiles"]} == {"INSTORE", "LINE"}
    assert "subscriptions" not in body

    by_mobile = lookup(client, source="INSTORE", identifierName="mobile", identifierValue=MOBILE)
    assert by_mobile.get_json()["id"] == 1000001
    anywhere = lookup(client, source="ALL", identifierName="line", identifierValue=LINE_A)
    assert anywhere.get_json()["id"] == 1000001

    absent = lookup(client, source="INSTORE", identifierName="mobile", identifierValue="6690000")
    assert absent.status_code == 400
    assert absent.get_json()["errors"] == [
        {"status": False, "code": 8015, "message": "No customer found with the given identifier"}
    ]
    elsewhere = lookup(client, source="INSTORE", identifierName="line", identifierValue=LINE_A)
    assert error_codes(elsewhere) == [8065]
    other_account = lookup(
        client, source="LINE", accountId="acc2", identifierName="line", identifierValue=LINE_A
    )
    assert error_codes(other_account) == [8065]
    no_account = lookup(client, source="LINE", identifierName="line", identifierValue=LINE_A)
    assert error_codes(no_account) == [8045]


def test_not_found_status_is_configurable_live(client):
    client.post("/sandbox/faults", json={"not_found_status": 200})
    absent = lookup(client, source="ALL", identifierName="mobile", identifierValue=MOBILE)
    assert absent.status_code == 200
    assert error_codes(absent) == [8015]


def test_lookup_embed_subscriptions(client):
    add(client, line(LINE_A))
    client.post(
        f"{CUSTOMERS}/1000001/subscriptions", json=sub_body(subscription("OPTOUT")), headers=AUTH
    )
    body = lookup(
        client,
        source="LINE",
        accountId="acc1",
        identifierName="line",
        identifierValue=LINE_A,
        embed="subscriptions",
    ).get_json()
    assert body["subscriptions"] == [
        {
            "channel": "LINE",
            "priority": "BULK",
            "type": "OPTOUT",
            "sourceName": "LINE",
            "accountId": "acc1",
        }
    ]


# -- subscriptions -----------------------------------------------------------------------------


def test_subscriptions_get_and_post_by_id(client):
    add(client, line(LINE_A))
    url = f"{CUSTOMERS}/1000001/subscriptions"
    empty = client.get(url, headers=AUTH)
    assert empty.get_json() == {
        "customerId": 1000001,
        "subscriptions": [],
        "warnings": [],
        "errors": None,
    }
    client.post(url, json=sub_body(subscription("OPTIN")), headers=AUTH)
    posted = client.post(
        url,
        json=sub_body(subscription("OPTOUT"), subscription("OPTIN", priority="TRANS")),
        headers=AUTH,
    )
    assert posted.status_code == 200
    current = {(s["priority"], s["type"]) for s in posted.get_json()["subscriptions"]}
    assert current == {("BULK", "OPTOUT"), ("TRANS", "OPTIN")}
    assert (
        client.get(url, headers=AUTH).get_json()["subscriptions"]
        == posted.get_json()["subscriptions"]
    )


def test_subscription_errors_change_nothing(client):
    add(client, line(LINE_A))
    url = f"{CUSTOMERS}/1000001/subscriptions"
    bad_type = client.post(
        url, json=sub_body(subscription("OPTOUT"), subscription("MAYBE")), headers=AUTH
    )
    assert bad_type.status_code == 400 and error_codes(bad_type) == [1001]
    bad_priority = client.post(
        url, json=sub_body(subscription("OPTIN", priority="X")), headers=AUTH
    )
    assert error_codes(bad_priority) == [1001]
    no_account = client.post(url, json=sub_body(subscription("OPTOUT", account=None)), headers=AUTH)
    assert error_codes(no_account) == [8045]
    assert client.get(url, headers=AUTH).get_json()["subscriptions"] == []
    unknown = client.get(f"{CUSTOMERS}/999/subscriptions", headers=AUTH)
    assert error_codes(unknown) == [8015]


def test_subscriptions_by_lookup(client):
    add(client, line(LINE_A))
    query = {
        "source": "LINE",
        "accountId": "acc1",
        "identifierName": "line",
        "identifierValue": LINE_A,
    }
    url = "/v2/customers/lookup/subscriptions"
    response = client.post(
        url, query_string=query, json=sub_body(subscription("OPTOUT")), headers=AUTH
    )
    assert response.status_code == 200
    assert response.get_json()["customerId"] == 1000001
    assert customers(client)[0]["subscriptions"][0]["type"] == "OPTOUT"
    read = client.get(url, query_string=query, headers=AUTH).get_json()
    assert read["subscriptions"][0]["type"] == "OPTOUT"
    missing = client.post(
        url,
        query_string={**query, "identifierValue": LINE_B},
        json=sub_body(subscription("OPTOUT")),
        headers=AUTH,
    )
    assert error_codes(missing) == [8015]


# -- change identifier -------------------------------------------------------------------------


def test_change_identifier_adds_and_removes(client):
    add(client, instore())
    url = f"{CUSTOMERS}/1000001/changeIdentifier"
    response = client.post(
        url,
        query_string={"source": "LINE", "accountId": "acc1"},
        json={"add": [{"type": "line", "value": LINE_A}], "remove": []},
        headers=AUTH,
    )
    assert response.get_json() == {"customerId": 1000001, "warnings": [], "errors": None}
    found = lookup(
        client, source="LINE", accountId="acc1", identifierName="line", identifierValue=LINE_A
    )
    assert found.get_json()["id"] == 1000001
    client.post(
        url,
        query_string={"source": "INSTORE"},
        json={
            "add": [{"type": "email", "value": "s@x.co"}],
            "remove": [{"type": "mobile", "value": MOBILE}],
        },
        headers=AUTH,
    )
    gone = lookup(client, source="INSTORE", identifierName="mobile", identifierValue=MOBILE)
    assert error_codes(gone) == [8015]
    last = client.post(
        url,
        query_string={"source": "INSTORE"},
        json={"remove": [{"type": "email", "value": "s@x.co"}]},
        headers=AUTH,
    )
    assert error_codes(last) == [1001]


def test_change_identifier_merges_other_customer(client):
    add(client, instore())  # 1000001, the survivor
    add(client, line(LINE_A))  # 1000002, LINE-only, becomes the victim
    survivor_subs = f"{CUSTOMERS}/1000001/subscriptions"
    victim_subs = f"{CUSTOMERS}/1000002/subscriptions"
    client.post(survivor_subs, json=sub_body(subscription("OPTIN")), headers=AUTH)
    client.post(
        victim_subs,
        json=sub_body(subscription("OPTOUT"), subscription("OPTOUT", priority="TRANS")),
        headers=AUTH,
    )

    response = client.post(
        f"{CUSTOMERS}/1000001/changeIdentifier",
        query_string={"source": "LINE", "accountId": "acc1"},
        json={"add": [{"type": "line", "value": LINE_A}]},
        headers=AUTH,
    )
    assert response.status_code == 200
    assert response.get_json()["warnings"][0]["status"] is True

    found = lookup(
        client, source="LINE", accountId="acc1", identifierName="line", identifierValue=LINE_A
    )
    assert found.get_json()["id"] == 1000001
    victim = client.get("/sandbox/customers/1000002").get_json()
    assert victim["mergedInto"] == 1000001 and victim["profiles"] == []
    survivor = client.get("/sandbox/customers/1000001").get_json()
    assert {p["source"] for p in survivor["profiles"]} == {"INSTORE", "LINE"}
    subs = {(s["priority"], s["type"]) for s in survivor["subscriptions"]}
    assert subs == {("BULK", "OPTIN"), ("TRANS", "OPTOUT")}  # survivor's BULK kept
    assert error_codes(client.get(victim_subs, headers=AUTH)) == [8015]
    # The victim's LINE profile is now the survivor's: registering it again is 1014.
    assert error_codes(add(client, line(LINE_A))) == [1014]


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
    assert error_codes(retry) == [1014]  # the client's retry meets its own write
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
    add(client, line(LINE_A), headers={})
    add(client, line(LINE_A))
    add(client, line(LINE_B))  # 429: the window holds 2 accepted calls
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
