"""Talking to the Capillary sandbox: faults, pre-registered customers, and its call log.

Calls per event are counted from what reached the sandbox (its call log), never from linecap's
own counters.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests

from bench.bodies import SANDBOX_PASSWORD, SANDBOX_USER, SOURCE_ACCOUNT_ID
from sandboxes.capillary.auth import basic_header

EXTERNAL_ID_PREFIX = "line_"  # linecap's default LINECAP_EXTERNAL_ID_PREFIX


class Sandbox:
    """A running Capillary sandbox: its URL and process id."""

    def __init__(self, url: str, pid: int = 0) -> None:
        self.url = url
        self.pid = pid
        self._local = threading.local()
        self._auth = basic_header(SANDBOX_USER, SANDBOX_PASSWORD)

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    def faults(self, **settings: Any) -> dict[str, Any]:
        response = self._session().post(self.url + "/sandbox/faults", json=settings, timeout=10)
        response.raise_for_status()
        return response.json()

    def lenient(self) -> None:
        """Play an org that registers customers by externalId and looks them up by LINE id
        (sandboxes.capillary.org.LENIENT): the bench measures linecap, not an org's rules."""
        from sandboxes.capillary.org import LENIENT, org_view

        response = self._session().post(self.url + "/sandbox/org", json=org_view(LENIENT),
                                        timeout=10)
        response.raise_for_status()

    def stats(self) -> dict[str, Any]:
        return self._session().get(self.url + "/sandbox/stats", timeout=30).json()

    def last_seq(self) -> int:
        """The call log's newest seq: analyse calls after it to leave out the set-up."""
        return int(self.stats()["total_calls"])

    def calls(self, since: int = 0) -> list[dict[str, Any]]:
        response = self._session().get(self.url + "/sandbox/calls", params={"since": since},
                                       timeout=60)
        return response.json()["calls"]

    def customers(self) -> list[dict[str, Any]]:
        return self._session().get(self.url + "/sandbox/customers", timeout=60).json()["customers"]

    def register(self, user_id: str, opted_in: bool = False) -> int:
        """One customer with INSTORE and LINE profiles (externalId as linecap would make it)."""
        external = {"type": "externalId", "value": EXTERNAL_ID_PREFIX + user_id}
        body = {"loyaltyInfo": {"loyaltyType": "non_loyalty"}, "profiles": [
            {"source": "INSTORE", "identifiers": [external]},
            {"source": "LINE", "accountId": SOURCE_ACCOUNT_ID,
             "identifiers": [{"type": "line", "value": user_id}, external]},
        ]}
        session = self._session()
        headers = {"Authorization": self._auth}
        response = session.post(self.url + "/v2/customers", json=body, headers=headers,
                                timeout=10)
        response.raise_for_status()
        customer_id = int(response.json()["createdId"])
        if opted_in:
            self.subscribe(customer_id, "OPTIN")
        return customer_id

    def subscribe(self, customer_id: int, kind: str) -> None:
        body = {"communicationId": -1, "campaignId": -1, "reason": "bench set-up",
                "scope": {"scope": "USER", "subScope": "NONE"},
                "subscriptions": [{"channel": "LINE", "priority": "BULK", "type": kind,
                                   "sourceName": "LINE", "accountId": SOURCE_ACCOUNT_ID}]}
        response = self._session().post(
            f"{self.url}/v2/customers/{customer_id}/subscriptions", json=body,
            headers={"Authorization": self._auth}, timeout=10)
        response.raise_for_status()

    def register_many(self, users: list[str], threads: int = 8) -> dict[str, int]:
        """Register every user (a few threads, keep-alive); user id -> customer id."""
        with ThreadPoolExecutor(threads) as pool:
            ids = list(pool.map(self.register, users))
        return dict(zip(users, ids, strict=True))
