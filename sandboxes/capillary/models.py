"""Customer and profile records as the store keeps them, and their JSON views."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from .validation import Identifier, SubscriptionKey


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
    def scope(self) -> tuple[str, str]:
        return self.source, self.account_id

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "accountId": self.account_id,
            "identifiers": [{"type": t, "value": v} for t, v in self.identifiers],
            "firstName": self.first_name,
            "lastName": self.last_name,
            "commChannels": copy.deepcopy(self.comm_channels),
        }


@dataclass
class Customer:
    """A person: profiles per source scope, subscriptions, and a merge marker."""

    id: int
    profiles: list[Profile] = field(default_factory=list)
    subscriptions: dict[SubscriptionKey, str] = field(default_factory=dict)
    loyalty_type: str = "non_loyalty"
    merged_into: int | None = None

    def profile_for(self, scope: tuple[str, str]) -> Profile | None:
        return next((p for p in self.profiles if p.scope == scope), None)

    def subscription_list(self) -> list[dict[str, Any]]:
        return [
            {
                "channel": channel,
                "priority": priority,
                "type": kind,
                "sourceName": source,
                "accountId": account,
            }
            for (channel, priority, source, account), kind in self.subscriptions.items()
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "profiles": [p.to_dict() for p in self.profiles],
            "subscriptions": self.subscription_list(),
            "loyaltyInfo": {"loyaltyType": self.loyalty_type},
            "mergedInto": self.merged_into,
        }
