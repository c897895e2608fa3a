"""Targets of the contract suite: the sandboxes by default (CI), or the real services.

Against a real Capillary cluster (a demo org):
    CAPILLARY_BASE_URL=https://… CAPILLARY_USERNAME=… CAPILLARY_PASSWORD=… \\
    LINECAP_CONTRACT_SOURCE_ACCOUNT_ID=<LINE source account id> \\
    .venv/bin/python -m pytest tests/contract --capillary-live [--contract-writes]
(or CAPILLARY_OAUTH_KEY/SECRET; CAPILLARY_ORG_UNIT_ID if the org wants one; with writes,
LINECAP_CONTRACT_MOBILE_PREFIX sets the country code and first digits of test mobiles.)
Against a real LINE channel:
    LINECAP_CONTRACT_LINE_TOKEN=<channel access token> \\
    .venv/bin/python -m pytest tests/contract --line-live [--contract-writes]

Read-only by default: without --contract-writes the live run creates nothing and changes no
setting; with it, test customers carry externalIds starting `linecap-contract-`.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests

from config import CapillaryAuth
from core.capillary.auth import CapillaryAuthenticator
from sandboxes.capillary import SandboxConfig, create_sandbox_app
from sandboxes.line import LineSandboxConfig, create_line_sandbox_app
from tests.threaded import ThreadedCapillary, ThreadedServer

SANDBOX_ACCOUNT = "contract-line-account"
SANDBOX_ORG_UNIT = 100
TEST_PREFIX = "linecap-contract-"


@dataclass
class Answer:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)

    def _codes(self, key: str) -> list[int]:
        items = self.body.get(key) if isinstance(self.body, dict) else None
        return [int(i["code"]) for i in items or [] if isinstance(i, dict) and "code" in i]

    @property
    def codes(self) -> list[int]:
        return self._codes("errors")

    @property
    def warnings(self) -> list[int]:
        return self._codes("warnings")


@dataclass
class CapillaryTarget:
    base_url: str
    headers: dict[str, str]
    account_id: str
    live: bool
    writes: bool
    org_unit_id: int | None
    mobile_prefix: str
    sandbox: ThreadedCapillary | None = None

    def call(self, method: str, path: str, params: dict | None = None,
             body: Any = None, headers: dict[str, str] | None = None) -> Answer:
        response = requests.request(method, self.base_url + path, params=params, json=body,
                                    headers=self.headers if headers is None else headers,
                                    timeout=30)
        try:
            parsed = response.json()
        except ValueError:
            parsed = response.text
        return Answer(response.status_code, parsed, dict(response.headers))

    def lookup(self, source: str, name: str, value: str, **params: str) -> Answer:
        query = {"source": source, "identifierName": name, "identifierValue": value, **params}
        if source == "LINE" and "accountId" not in params:
            query["accountId"] = self.account_id
        return self.call("GET", "/v2/customers/lookup/customerDetails", query)

    def add(self, profile: dict[str, Any], loyalty_type: str = "non_loyalty") -> Answer:
        return self.call("POST", "/v2/customers", body={
            "loyaltyInfo": {"loyaltyType": loyalty_type}, "profiles": [profile]})

    def subscription(self, kind: str) -> dict[str, Any]:
        entry: dict[str, Any] = {"channel": "LINE", "priority": "BULK", "type": kind,
                                 "sourceName": "LINE", "accountId": self.account_id}
        if self.org_unit_id:
            entry["orgUnitId"] = self.org_unit_id
        return entry

    def require_writes(self) -> None:
        if self.live and not self.writes:
            pytest.skip("creates test customers: run with --contract-writes on a demo org")

    def require_sandbox(self) -> ThreadedCapillary:
        if self.sandbox is None:
            pytest.skip("needs the sandbox's org switches")
        return self.sandbox

    def new_mobile(self) -> str:
        digits = 12 - len(self.mobile_prefix)
        return self.mobile_prefix + "".join(secrets.choice("0123456789") for _ in range(digits))

    @staticmethod
    def new_line_id() -> str:
        return "U" + secrets.token_hex(16)

    @staticmethod
    def new_external_id() -> str:
        return TEST_PREFIX + secrets.token_hex(8)


@dataclass
class LineTarget:
    base_url: str
    token: str
    live: bool
    writes: bool
    sandbox: ThreadedServer | None = None

    def call(self, method: str, path: str, token: str | None = None,
             body: Any = None, params: dict | None = None) -> Answer:
        headers = {"Authorization": f"Bearer {self.token if token is None else token}"}
        response = requests.request(method, self.base_url + path, json=body, params=params,
                                    headers=headers, timeout=30)
        try:
            parsed = response.json()
        except ValueError:
            parsed = response.text
        return Answer(response.status_code, parsed, dict(response.headers))

    def require_writes(self) -> None:
        if self.live and not self.writes:
            pytest.skip("changes the channel or uses its webhook test quota: run with "
                        "--contract-writes")


@pytest.fixture(scope="module")
def capillary(request) -> CapillaryTarget:
    writes = request.config.getoption("--contract-writes")
    if request.config.getoption("--capillary-live"):
        yield _live_capillary(writes)
        return
    server = ThreadedCapillary(create_sandbox_app(SandboxConfig(
        valid_accounts={SANDBOX_ACCOUNT})))
    auth = CapillaryAuthenticator(server.url, CapillaryAuth("sandbox-till", "sandbox-password"),
                                  requests.Session(), 10)
    yield CapillaryTarget(server.url, auth.headers(), SANDBOX_ACCOUNT, live=False, writes=True,
                          org_unit_id=SANDBOX_ORG_UNIT, mobile_prefix="66899", sandbox=server)
    server.stop()


def _live_capillary(writes: bool) -> CapillaryTarget:
    base_url = os.environ.get("CAPILLARY_BASE_URL", "").rstrip("/")
    account = os.environ.get("LINECAP_CONTRACT_SOURCE_ACCOUNT_ID", "")
    if not base_url or not account:
        pytest.exit("--capillary-live needs CAPILLARY_BASE_URL, credentials and "
                    "LINECAP_CONTRACT_SOURCE_ACCOUNT_ID", returncode=2)
    key, secret = os.environ.get("CAPILLARY_OAUTH_KEY"), os.environ.get("CAPILLARY_OAUTH_SECRET")
    auth = CapillaryAuth(oauth_key=key, oauth_secret=secret) if key else CapillaryAuth(
        os.environ.get("CAPILLARY_USERNAME"), os.environ.get("CAPILLARY_PASSWORD"))
    headers = CapillaryAuthenticator(base_url, auth, requests.Session(), 30).headers()
    org_unit = os.environ.get("CAPILLARY_ORG_UNIT_ID")
    return CapillaryTarget(base_url, headers, account, live=True, writes=writes,
                           org_unit_id=int(org_unit) if org_unit else None,
                           mobile_prefix=os.environ.get("LINECAP_CONTRACT_MOBILE_PREFIX",
                                                        "66899"))


SANDBOX_CHANNEL = {"name": "contract", "channel_id": "2000000001", "channel_secret": "s" * 32,
                   "access_token": "contract-token", "source_account_id": SANDBOX_ACCOUNT}


@pytest.fixture(scope="module")
def line_platform(request) -> LineTarget:
    writes = request.config.getoption("--contract-writes")
    if request.config.getoption("--line-live"):
        token = os.environ.get("LINECAP_CONTRACT_LINE_TOKEN", "")
        if not token:
            pytest.exit("--line-live needs LINECAP_CONTRACT_LINE_TOKEN", returncode=2)
        base_url = os.environ.get("LINE_API_BASE_URL", "https://api.line.me").rstrip("/")
        yield LineTarget(base_url, token, live=True, writes=writes)
        return
    server = ThreadedServer(create_line_sandbox_app(LineSandboxConfig(
        channels=[SANDBOX_CHANNEL], endpoint_propagation_seconds=0)))
    yield LineTarget(server.url, SANDBOX_CHANNEL["access_token"], live=False, writes=True,
                     sandbox=server)
    server.stop()
