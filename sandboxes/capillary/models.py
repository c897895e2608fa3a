"""Customers and profiles as the store keeps them, and the documents the API answers with."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from .validation import Identifier, Scope, SubscriptionKey


@dataclass
class Profile:
    """One source profile; ``account_id`` is ``""`` for single-account sources."""

    source: str
    account_id: str
    identifiers: list[Identifier]
    first_name: str = ""
    last_name: str = ""
    comm_channels: list[dict[str, Any]] = field(default_factory=list)

    @property
    def scope(self) -> Scope:
        return self.source, self.account_id

    def to_dict(self, customer_id: int) -> dict[str, Any]:
        # Field names of _customer.md § Fetch Customer Details' sample.
        return {
            "firstName": self.first_name,
            "lastName": self.last_name,
            "identifiers": [{"type": t, "value": v} for t, v in self.identifiers],
            "commChannels": copy.deepcopy(self.comm_channels),
            "source": self.source,
            "userId": customer_id,
            "accountId": self.account_id,
        }


@dataclass
class Customer:
    """A person: profiles per source scope, subscriptions, and a merge marker."""

    id: int
    profiles: list[Profile] = field(default_factory=list)
    subscriptions: dict[SubscriptionKey, str] = field(default_factory=dict)
    loyalty_type: str = "non_loyalty"
    merged_into: int | None = None

    def profile_for(self, scope: Scope) -> Profile | None:
        return next((p for p in self.profiles if p.scope == scope), None)

    def subscription_entries(self, with_scope: bool) -> list[dict[str, Any]]:
        """The subscription list; `with_scope` adds sourceName and accountId, which the
        embedded lookup answer leaves out (_customer.md § Fetch Customer Details,
        embed=subscriptions: entries of channel, priority and type only)."""
        entries = []
        for (channel, priority, source, account), kind in self.subscriptions.items():
            entry: dict[str, Any] = {"channel": channel, "priority": priority, "type": kind}
            if with_scope:
                entry.update({"sourceName": source, "accountId": account})
            entries.append(entry)
        return entries

    def document(self, source: str, account_id: str | None,
                 embed_subscriptions: bool) -> dict[str, Any]:
        """The customer as a lookup or fetch answers it: only the profiles of the source asked
        for (all with source=ALL), _customer.md § Fetch Customer Details: "Pass the source from
        which you want to fetch details ... ALL (to fetch details from all sources)"."""
        shown = [p for p in self.profiles
                 if source == "ALL" or (p.source == source and (not account_id
                                                                or p.account_id == account_id))]
        body: dict[str, Any] = {
            "id": self.id,
            "profiles": [p.to_dict(self.id) for p in shown],
            "loyaltyInfo": {"loyaltyType": self.loyalty_type},
        }
        if embed_subscriptions:
            body["subscriptionInfo"] = {"subscriptions": self.subscription_entries(False)}
        return body

    def inspection(self) -> dict[str, Any]:
        """Everything, for the sandbox's own /sandbox/customers view (not a Capillary API)."""
        return {
            "id": self.id,
            "profiles": [p.to_dict(self.id) for p in self.profiles],
            "subscriptions": self.subscription_entries(True),
            "loyaltyInfo": {"loyaltyType": self.loyalty_type},
            "mergedInto": self.merged_into,
        }
