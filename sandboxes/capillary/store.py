"""Thread-safe in-memory customer store with Capillary's identity rules.

Every public method takes the one lock for its whole read-check-write, so concurrent
workers see the same races Capillary would resolve atomically (e.g. two registrations
of one identifier: exactly one wins, the other gets 1014).
"""

from __future__ import annotations

import copy
import threading
from typing import Any

from .errors import (
    ALREADY_REGISTERED,
    IDENTIFIER_TAKEN,
    MERGED_WARNING,
    NOT_FOUND,
    NOT_FOUND_IN_SOURCE,
    SAME_CUSTOMER_OTHER_SOURCE,
    ApiError,
    invalid_input,
    warning_item,
)
from .models import Customer, Profile
from .validation import SHARED_IDENTIFIER_TYPES, Identifier, SubscriptionKey

FIRST_CUSTOMER_ID = 1000001
Scope = tuple[str, str]


def _not_found() -> ApiError:
    return ApiError(NOT_FOUND, "No customer found with the given identifier")


class CustomerStore:
    """Customers by id plus an index (source, accountId, type, value) → customer id."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._clear()

    def _clear(self) -> None:
        self._customers: dict[int, Customer] = {}
        self._next_id = FIRST_CUSTOMER_ID
        self._by_scope: dict[tuple[str, str, str, str], int] = {}
        self._scopes_of: dict[Identifier, set[Scope]] = {}

    def reset(self) -> None:
        """Forget every customer; ids start again at FIRST_CUSTOMER_ID."""
        with self._lock:
            self._clear()

    # -- index -------------------------------------------------------------------------------

    def _index(self, customer_id: int, scope: Scope, ident: Identifier) -> None:
        self._by_scope[(*scope, *ident)] = customer_id
        self._scopes_of.setdefault(ident, set()).add(scope)

    def _unindex(self, scope: Scope, ident: Identifier) -> None:
        self._by_scope.pop((*scope, *ident), None)
        scopes = self._scopes_of.get(ident)
        if scopes is not None:
            scopes.discard(scope)
            if not scopes:
                del self._scopes_of[ident]

    def _holder(self, scope: Scope, ident: Identifier) -> int | None:
        return self._by_scope.get((*scope, *ident))

    def _holders_anywhere(self, ident: Identifier) -> set[int]:
        return {self._by_scope[(*s, *ident)] for s in self._scopes_of.get(ident, ())}

    def _live(self, customer_id: int) -> Customer:
        customer = self._customers.get(customer_id)
        if customer is None or customer.merged_into is not None:
            raise _not_found()
        return customer

    def _attach(self, customer: Customer, profile: Profile) -> None:
        profile = copy.deepcopy(profile)
        customer.profiles.append(profile)
        for ident in profile.identifiers:
            self._index(customer.id, profile.scope, ident)

    # -- add customer ------------------------------------------------------------------------

    def register(
        self, profiles: list[Profile], loyalty_type: str = "non_loyalty"
    ) -> tuple[int, list[dict[str, Any]]]:
        """Add customer: create, or attach to the customer sharing an identifier (8050)."""
        scopes = [p.scope for p in profiles]
        if len(set(scopes)) != len(scopes):
            raise invalid_input("two profiles for the same source and account")
        with self._lock:
            for profile in profiles:
                if any(self._holder(profile.scope, i) is not None for i in profile.identifiers):
                    raise ApiError(ALREADY_REGISTERED, "Customer already registered")
            matches: set[int] = set()
            for profile in profiles:
                for ident in profile.identifiers:
                    if ident[0] in SHARED_IDENTIFIER_TYPES:
                        matches |= self._holders_anywhere(ident)
            if len(matches) > 1:
                raise ApiError(IDENTIFIER_TAKEN, "Identifier already assigned to another customer")
            warnings: list[dict[str, Any]] = []
            if matches:
                customer = self._customers[matches.pop()]
                if any(customer.profile_for(scope) for scope in scopes):
                    raise ApiError(ALREADY_REGISTERED, "Customer already registered")
                message = "Same customer found in other sources, combining"
                warnings.append(warning_item(SAME_CUSTOMER_OTHER_SOURCE, message))
            else:
                customer = Customer(id=self._next_id, loyalty_type=loyalty_type)
                self._next_id += 1
                self._customers[customer.id] = customer
            for profile in profiles:
                self._attach(customer, profile)
            return customer.id, warnings

    # -- lookup ------------------------------------------------------------------------------

    def _find(self, scope: Scope | None, ident: Identifier) -> int:
        if scope is None:  # source=ALL
            holders = self._holders_anywhere(ident)
            if not holders:
                raise _not_found()
            return min(holders)
        holder = self._holder(scope, ident)
        if holder is not None:
            return holder
        if ident in self._scopes_of:
            raise ApiError(NOT_FOUND_IN_SOURCE, "Customer not found in the given source")
        raise _not_found()

    def lookup(self, scope: Scope | None, ident: Identifier) -> dict[str, Any]:
        """Customer holding ``ident`` in ``scope`` (None = any source); 8015 / 8065 if absent."""
        with self._lock:
            return self._customers[self._find(scope, ident)].to_dict()

    def lookup_id(self, scope: Scope | None, ident: Identifier) -> int:
        """Like :meth:`lookup` but only the id."""
        with self._lock:
            return self._find(scope, ident)

    # -- subscriptions -----------------------------------------------------------------------

    def subscriptions(self, customer_id: int) -> list[dict[str, Any]]:
        """Current subscription entries of a live customer (8015 otherwise)."""
        with self._lock:
            return self._live(customer_id).subscription_list()

    def set_subscriptions(
        self, customer_id: int, entries: list[tuple[SubscriptionKey, str]]
    ) -> list[dict[str, Any]]:
        """Set each (key → OPTIN/OPTOUT) and return the customer's full list."""
        with self._lock:
            customer = self._live(customer_id)
            for key, kind in entries:
                customer.subscriptions[key] = kind
            return customer.subscription_list()

    # -- change identifier / merge -----------------------------------------------------------

    def _merge(self, survivor: Customer, victim: Customer) -> None:
        for profile in victim.profiles:
            for ident in profile.identifiers:
                self._unindex(profile.scope, ident)
            target = survivor.profile_for(profile.scope)
            if target is None:
                self._attach(survivor, profile)
                continue
            for ident in profile.identifiers:
                if ident not in target.identifiers:
                    target.identifiers.append(ident)
                self._index(survivor.id, target.scope, ident)
        for key, kind in victim.subscriptions.items():
            survivor.subscriptions.setdefault(key, kind)
        victim.profiles = []
        victim.subscriptions = {}
        victim.merged_into = survivor.id

    def change_identifiers(
        self,
        customer_id: int,
        scope: Scope,
        add: list[Identifier],
        remove: list[Identifier],
    ) -> list[dict[str, Any]]:
        """Add/remove identifiers on the scope's profile; adding one held elsewhere merges."""
        with self._lock:
            customer = self._live(customer_id)
            profile = customer.profile_for(scope)
            current = set(profile.identifiers) if profile else set()
            victims: list[Customer] = []
            for ident in add:
                holder = self._holder(scope, ident)
                if holder is not None and holder != customer.id:
                    victim = self._customers[holder]
                    if victim not in victims:
                        victims.append(victim)
            resulting = set(current) | set(add)
            for victim in victims:
                victim_profile = victim.profile_for(scope)
                if victim_profile is not None:
                    resulting |= set(victim_profile.identifiers)
            if not resulting - set(remove):
                raise invalid_input("a profile needs at least one identifier")
            warnings = []
            for victim in victims:
                self._merge(customer, victim)
                warnings.append(
                    warning_item(MERGED_WARNING, f"Customer {victim.id} merged into {customer.id}")
                )
            profile = customer.profile_for(scope)
            if profile is None:
                profile = Profile(source=scope[0], account_id=scope[1], identifiers=[])
                customer.profiles.append(profile)
            for ident in add:
                if ident not in profile.identifiers:
                    profile.identifiers.append(ident)
                self._index(customer.id, scope, ident)
            for ident in remove:
                if ident in profile.identifiers:
                    profile.identifiers.remove(ident)
                    self._unindex(scope, ident)
            return warnings

    # -- inspection --------------------------------------------------------------------------

    def all_customers(self) -> list[dict[str, Any]]:
        """Every customer, merged victims included, in id order."""
        with self._lock:
            return [self._customers[cid].to_dict() for cid in sorted(self._customers)]

    def customer(self, customer_id: int) -> dict[str, Any] | None:
        """One customer (merged or not) for inspection, or None."""
        with self._lock:
            customer = self._customers.get(customer_id)
            return None if customer is None else customer.to_dict()

    def live_count(self) -> int:
        """Customers not merged away."""
        with self._lock:
            return sum(1 for c in self._customers.values() if c.merged_into is None)
