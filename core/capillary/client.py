"""The Capillary v2 calls linecap makes, as plain methods over CapillaryTransport."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import requests

from config import Settings
from core.capillary.auth import CapillaryAuthenticator
from core.capillary.transport import CapillaryTransport, ResponseObserver, warning_codes
from core.errors import NotFoundError
from core.store.rate_budget import SharedRateLimiter

COMBINED_WARNING = 8050


@dataclass(frozen=True)
class Subscription:
    channel: str
    priority: str
    account_id: str
    source_name: str = "LINE"


@dataclass(frozen=True)
class AddResult:
    customer_id: int
    combined: bool  # warning 8050: the profile was attached to an existing customer


def capillary_session(base_url: str) -> requests.Session:
    """A pooled session whose proxy and CA settings are read from the environment once.

    requests otherwise re-reads them on every call, a visible share of a worker's CPU in the
    drain profile (docs/BENCHMARKS.md); HTTPS_PROXY, NO_PROXY and REQUESTS_CA_BUNDLE still
    apply, as of start-up.
    """
    session = requests.Session()
    session.trust_env = False
    session.proxies = requests.utils.get_environ_proxies(base_url)
    session.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get(
        "CURL_CA_BUNDLE") or True
    session.headers["Content-Type"] = "application/json"
    return session


class CapillaryClient:
    def __init__(self, transport: CapillaryTransport) -> None:
        self.transport = transport

    @classmethod
    def from_settings(cls, settings: Settings, limiter: SharedRateLimiter | None,
                      observe: ResponseObserver | None = None) -> CapillaryClient:
        session = capillary_session(settings.capillary_base_url)
        auth = CapillaryAuthenticator(settings.capillary_base_url, settings.capillary_auth,
                                      session, settings.capillary_timeout_seconds)
        transport = CapillaryTransport(settings.capillary_base_url, auth, session, limiter,
                                       settings.capillary_timeout_seconds, observe=observe)
        return cls(transport)

    def lookup(self, source: str, identifier_name: str, identifier_value: str,
               account_id: str | None = None, embed_subscriptions: bool = False,
               ) -> dict[str, Any] | None:
        """The customer holding that identifier in that source, or None."""
        params = {"source": source, "identifierName": identifier_name,
                  "identifierValue": identifier_value}
        if account_id:
            params["accountId"] = account_id
        if embed_subscriptions:
            params["embed"] = "subscriptions"
        try:
            body = self.transport.call("GET", "/v2/customers/lookup/customerDetails",
                                       "/v2/customers/lookup/customerDetails", params=params)
        except NotFoundError:
            return None
        return body if body.get("id") is not None else None

    def add_customer(self, profile: dict[str, Any]) -> AddResult:
        """Register one source profile; raises AlreadyRegisteredError if it exists there."""
        body = {"loyaltyInfo": {"loyaltyType": "non_loyalty"}, "profiles": [profile]}
        result = self.transport.call("POST", "/v2/customers", "/v2/customers", json_body=body)
        return AddResult(int(result["createdId"]), COMBINED_WARNING in warning_codes(result))

    def set_subscription(self, customer_id: int, subscription: Subscription, opt_in: bool,
                         reason: str) -> None:
        body = {
            "communicationId": -1,
            "campaignId": -1,
            "reason": reason,
            "scope": {"scope": "USER", "subScope": "NONE"},
            "subscriptions": [{
                "channel": subscription.channel,
                "priority": subscription.priority,
                "type": "OPTIN" if opt_in else "OPTOUT",
                "sourceName": subscription.source_name,
                "accountId": subscription.account_id,
            }],
        }
        self.transport.call("POST", f"/v2/customers/{customer_id}/subscriptions",
                            "/v2/customers/{id}/subscriptions", json_body=body)

    def get_subscriptions(self, customer_id: int) -> list[dict[str, Any]]:
        body = self.transport.call("GET", f"/v2/customers/{customer_id}/subscriptions",
                                   "/v2/customers/{id}/subscriptions")
        return list(body.get("subscriptions") or [])

    def change_identifier(self, customer_id: int, source: str, account_id: str | None,
                          add: list[dict[str, str]], remove: list[dict[str, str]] | None = None,
                          ) -> dict[str, Any]:
        params = {"source": source}
        if account_id:
            params["accountId"] = account_id
        return self.transport.call(
            "POST", f"/v2/customers/{customer_id}/changeIdentifier",
            "/v2/customers/{id}/changeIdentifier", params=params,
            json_body={"add": add, "remove": remove or []},
        )


def subscription_status(subscriptions: list[dict[str, Any]] | None,
                        wanted: Subscription) -> str | None:
    """"OPTIN"/"OPTOUT" for the LINE channel of that account, or None when not recorded."""
    for item in subscriptions or []:
        if (str(item.get("channel", "")).upper() == wanted.channel.upper()
                and str(item.get("priority", wanted.priority)).upper() == wanted.priority
                and str(item.get("accountId", wanted.account_id)) == wanted.account_id):
            return str(item.get("type", "")).upper() or None
    return None
