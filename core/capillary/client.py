"""The Capillary v2 calls linecap makes, as plain methods over CapillaryTransport.

Each call, the fields linecap reads from it and the codes it meets are listed in
docs/CAPILLARY.md with the document they come from.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import requests

from config import Settings
from core.capillary import codes
from core.capillary.auth import CapillaryAuthenticator
from core.capillary.transport import (
    CapillaryTransport,
    ResponseObserver,
    raise_for_envelope,
    warning_codes,
)
from core.errors import InvalidInputError, LinecapError, NotFoundError, TransientError
from core.store.rate_budget import SharedRateLimiter


@dataclass(frozen=True)
class Subscription:
    """The subscription a LINE channel's follow opts in and its unfollow opts out."""

    channel: str
    priority: str
    account_id: str
    source_name: str = "LINE"
    org_unit_id: int | None = None


@dataclass(frozen=True)
class AddResult:
    customer_id: int
    combined: bool  # warning 8050: the profile was attached to an existing customer
    warnings: tuple[int, ...] = ()


@dataclass(frozen=True)
class BatchItem:
    """One item's answer in a batch registration: the customer, or the error it met."""

    result: AddResult | None
    error: LinecapError | None


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
        """The customer holding that identifier in that source (showing that source's
        profiles), or None. An identifierName the org refuses raises ConfigurationError
        with code 8013."""
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

    def customer(self, customer_id: int, source: str = "ALL", account_id: str | None = None,
                 embed_subscriptions: bool = False) -> dict[str, Any] | None:
        """The customer by id with the profiles of `source` (ALL: every profile), or None
        when there is no such customer. A merged-away id raises MergedAwayError."""
        params = {"source": source}
        if account_id:
            params["accountId"] = account_id
        if embed_subscriptions:
            params["embed"] = "subscriptions"
        try:
            body = self.transport.call("GET", f"/v2/customers/{customer_id}",
                                       "/v2/customers/{id}", params=params)
        except NotFoundError:
            return None
        return body if body.get("id") is not None else None

    def add_customer(self, profile: dict[str, Any], loyalty_type: str) -> AddResult:
        """Register one source profile; raises AlreadyRegisteredError if it exists there."""
        body = {"loyaltyInfo": {"loyaltyType": loyalty_type}, "profiles": [profile]}
        result = self.transport.call("POST", "/v2/customers", "/v2/customers", json_body=body)
        warnings = tuple(warning_codes(result))
        return AddResult(int(result["createdId"]), codes.COMBINED in warnings, warnings)

    def add_customers(self, profiles: list[dict[str, Any]],
                      loyalty_types: list[str]) -> list[BatchItem]:
        """Register one profile per item in one POST /v2/customers/bulk; an answer per item, in
        order. A batch over the cluster's limit raises BatchTooLargeError (1060)."""
        bodies = [{"loyaltyInfo": {"loyaltyType": loyalty}, "profiles": [profile]}
                  for profile, loyalty in zip(profiles, loyalty_types, strict=True)]
        answers = self.transport.call("POST", "/v2/customers/bulk", "/v2/customers/bulk",
                                      json_body=bodies, per_item=True)
        if not isinstance(answers, list) or len(answers) != len(bodies):
            raise TransientError("POST /v2/customers/bulk: the answer does not have one "
                                 "element per item")
        return [_batch_item(answer) for answer in answers]

    def set_subscription(self, customer_id: int, subscription: Subscription, opt_in: bool,
                         reason: str) -> None:
        entry: dict[str, Any] = {
            "channel": subscription.channel,
            "priority": subscription.priority,
            "type": "OPTIN" if opt_in else "OPTOUT",
            "sourceName": subscription.source_name,
            "accountId": subscription.account_id,
        }
        if subscription.org_unit_id is not None:
            entry["orgUnitId"] = subscription.org_unit_id
        body = {"communicationId": -1, "campaignId": -1, "reason": reason,
                "scope": {"scope": "USER", "subScope": "NONE"}, "subscriptions": [entry]}
        self.transport.call("POST", f"/v2/customers/{customer_id}/subscriptions",
                            "/v2/customers/{id}/subscriptions", json_body=body)

    def get_subscriptions(self, customer_id: int) -> list[dict[str, Any]]:
        """The top-level `subscriptions` of GET …/subscriptions (entries may carry
        sourceName and accountId; the lookup's embedded list does not)."""
        body = self.transport.call("GET", f"/v2/customers/{customer_id}/subscriptions",
                                   "/v2/customers/{id}/subscriptions")
        return list(body.get("subscriptions") or [])

    def change_identifier(self, customer_id: int, source: str, account_id: str | None,
                          add: list[dict[str, str]], remove: list[dict[str, str]] | None = None,
                          ) -> int:
        """Add/remove identifiers on the customer's profile in that source (+ account); the
        id the profile ends on: the survivor when the customer was merged (warning 8051)."""
        params = {"source": source}
        if account_id:
            params["accountId"] = account_id
        body = self.transport.call(
            "POST", f"/v2/customers/{customer_id}/changeIdentifier",
            "/v2/customers/{id}/changeIdentifier", params=params,
            json_body={"add": add, "remove": remove or []},
        )
        survivor = body.get("createdId")
        if codes.MERGED_INTO in warning_codes(body) and survivor is not None:
            return int(survivor)
        return customer_id


def _batch_item(answer: Any) -> BatchItem:
    """One element of a batch answer: `entity` (id, warnings) or that item's `errors`."""
    entity = answer.get("entity") if isinstance(answer, dict) else None
    if isinstance(entity, dict) and entity.get("id") is not None:
        warnings = tuple(warning_codes(entity)) + tuple(warning_codes(answer))
        return BatchItem(AddResult(int(entity["id"]), codes.COMBINED in warnings, warnings),
                         None)
    try:
        raise_for_envelope("POST /v2/customers/bulk item", 400, answer)
    except LinecapError as exc:
        return BatchItem(None, exc)
    return BatchItem(None, InvalidInputError("POST /v2/customers/bulk item: no entity and no "
                                             "errors"))


def subscription_entries(customer: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The subscription list of a lookup or fetch with embed=subscriptions: nested under
    `subscriptionInfo` (_customer.md § Fetch Customer Details)."""
    info = (customer or {}).get("subscriptionInfo")
    entries = info.get("subscriptions") if isinstance(info, dict) else None
    return [e for e in entries or [] if isinstance(e, dict)]


def subscription_status(subscriptions: list[dict[str, Any]] | None, wanted: Subscription,
                        only_account: bool = False) -> str | None:
    """"OPTIN"/"OPTOUT" for the wanted channel and priority, or None when not recorded.

    Channel names compare without case (the documents list `line`, samples send `LINE`).
    An entry naming another account never counts. An entry naming none (the lookup's
    embedded list never does) counts only when `only_account` says this account is the
    org's only one for the channel; with several, it cannot tell whose status it is.
    """
    for item in subscriptions or []:
        if (str(item.get("channel", "")).upper() != wanted.channel.upper()
                or str(item.get("priority", wanted.priority)).upper() != wanted.priority):
            continue
        account = item.get("accountId")
        if account is None and not only_account:
            continue
        if account is not None and str(account) != wanted.account_id:
            continue
        return str(item.get("type", "")).upper() or None
    return None
