"""Thread-safe in-memory customers with Capillary's identity rules.

- Identifiers are unique within a source (single-account sources) or within an account
  (multi-account sources): _customer.md § Register Customer "In a source account, identifiers
  should be unique"; § Update Customer Identifiers "unique within a source for single account
  sources and unique within an account for multiple account sources".
- Registering an identifier that exists in another source adds the profile to that customer
  (warning 8050): § Register Customer "a new source account is added to the existing account".
- Adding (changeIdentifier) an identifier that exists in a different source/account merges the
  customer in the path INTO the one holding it: "The new account will be a victim account and
  the existing account is a survivor account" (warning 8051); in the same source/account it is
  refused (8008). A merged-away customer answers 8069 (§ Fetch Customer Details).

Every public method holds the one lock for its whole read-check-write, so concurrent clients
see the races Capillary resolves atomically (two registrations of one identifier: one wins).
"""

from __future__ import annotations

import copy
import threading
from typing import Any

from .errors import (
    ALREADY_IN_SOURCE,
    CANNOT_MERGE,
    COMBINED,
    CUSTOMER_ID_INVALID,
    IDENTIFIER_IN_SAME_SOURCE,
    LOYALTY_TO_NON_LOYALTY,
    MERGED_AWAY,
    MERGED_INTO,
    NOT_FOUND_IN_SOURCE,
    ApiError,
    invalid_input,
    not_found,
    warning_item,
)
from .models import Customer, Profile
from .validation import Identifier, Scope, SubscriptionKey

FIRST_CUSTOMER_ID = 1000001


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

    # -- index ---------------------------------------------------------------------------------

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

    def _holders_elsewhere(self, scope: Scope, ident: Identifier) -> set[int]:
        return {self._by_scope[(*s, *ident)] for s in self._scopes_of.get(ident, ())
                if s != scope}

    def _customer(self, customer_id: int) -> Customer:
        """A live customer by id: 8015 when unknown, 8069 when merged into another."""
        customer = self._customers.get(customer_id)
        if customer is None:
            raise not_found()
        if customer.merged_into is not None:
            raise ApiError(MERGED_AWAY, "The customer is merged into another account.")
        return customer

    def _attach(self, customer: Customer, profile: Profile) -> None:
        profile = copy.deepcopy(profile)
        customer.profiles.append(profile)
        for ident in profile.identifiers:
            self._index(customer.id, profile.scope, ident)

    # -- register ------------------------------------------------------------------------------

    def register(self, profiles: list[Profile],
                 loyalty_type: str) -> tuple[int, list[dict[str, Any]]]:
        """Add customer: a new id, or the existing customer's with warning 8050."""
        scopes = [p.scope for p in profiles]
        if len(set(scopes)) != len(scopes):
            raise invalid_input("two profiles for the same source and account")
        with self._lock:
            return self._register(profiles, loyalty_type)

    def _register(self, profiles: list[Profile],
                  loyalty_type: str) -> tuple[int, list[dict[str, Any]]]:
        for profile in profiles:
            if any(self._holder(profile.scope, i) is not None for i in profile.identifiers):
                # reference § Add customer: "Same source already holds it: 8006".
                raise ApiError(ALREADY_IN_SOURCE, "Customer already exists for same source")
        matches = {holder for profile in profiles for ident in profile.identifiers
                   for holder in self._holders_elsewhere(profile.scope, ident)}
        if len(matches) > 1:
            # Not documented for registration; the changeIdentifier table's wording.
            raise ApiError(CANNOT_MERGE, "Each identifier is registered with a different "
                                         "customer in other source. Unable to merge accounts.")
        warnings: list[dict[str, Any]] = []
        if matches:
            customer = self._customers[matches.pop()]
            if any(customer.profile_for(p.scope) for p in profiles):
                raise ApiError(ALREADY_IN_SOURCE, "Customer already exists for same source")
            if customer.loyalty_type == "loyalty" and loyalty_type == "non_loyalty":
                raise ApiError(LOYALTY_TO_NON_LOYALTY,
                               "Conversion of loyalty customer to non-loyalty is not allowed.")
            customer.loyalty_type = loyalty_type
            warnings.append(warning_item(COMBINED,
                                         "Same Customer found in other sources,Combining"))
        else:
            customer = Customer(id=self._next_id, loyalty_type=loyalty_type)
            self._next_id += 1
            self._customers[customer.id] = customer
        for profile in profiles:
            self._attach(customer, profile)
        return customer.id, warnings

    # -- read ----------------------------------------------------------------------------------

    def _find(self, scope: Scope | None, ident: Identifier) -> Customer:
        if scope is None:  # source=ALL
            holders = {self._by_scope[(*s, *ident)] for s in self._scopes_of.get(ident, ())}
            if not holders:
                raise not_found()
            return self._customers[min(holders)]
        holder = self._holder(scope, ident)
        if holder is not None:
            return self._customers[holder]
        if ident in self._scopes_of:
            raise ApiError(NOT_FOUND_IN_SOURCE, "No customer found in the given source with "
                                                "the given identifier.")
        raise not_found()

    def lookup(self, scope: Scope | None, ident: Identifier,
               embed_subscriptions: bool) -> dict[str, Any]:
        """The customer holding ``ident`` in ``scope`` (None = ALL), showing that source's
        profiles (all with ALL); 8015 / 8065 when nobody holds it."""
        with self._lock:
            source, account = scope if scope is not None else ("ALL", None)
            return self._find(scope, ident).document(source, account, embed_subscriptions)

    def lookup_id(self, scope: Scope | None, ident: Identifier) -> int:
        with self._lock:
            return self._find(scope, ident).id

    def fetch(self, customer_id: int, source: str, account_id: str | None,
              embed_subscriptions: bool) -> dict[str, Any]:
        """GET /v2/customers/{id}: 8015 unknown, 8069 merged away."""
        with self._lock:
            return self._customer(customer_id).document(source, account_id,
                                                        embed_subscriptions)

    # -- subscriptions -------------------------------------------------------------------------

    def subscriptions(self, customer_id: int) -> list[dict[str, Any]]:
        with self._lock:
            return self._customer(customer_id).subscription_entries(True)

    def set_subscriptions(self, customer_id: int,
                          entries: list[tuple[SubscriptionKey, str]]) -> list[dict[str, Any]]:
        with self._lock:
            customer = self._customer(customer_id)
            for key, kind in entries:
                customer.subscriptions[key] = kind
            return customer.subscription_entries(True)

    # -- change identifier / merge -------------------------------------------------------------

    def change_identifiers(self, customer_id: int, scope: Scope, add: list[Identifier],
                           remove: list[Identifier]) -> tuple[int, list[dict[str, Any]]]:
        """Add/remove identifiers on the customer's profile in `scope`; returns the id the
        profile ends on (the survivor when the customer was merged) and the warnings."""
        with self._lock:
            customer = self._customers.get(customer_id)
            if customer is None:
                raise ApiError(CUSTOMER_ID_INVALID, "Unable to identify the customer. "
                                                    "Customer id is invalid.")
            customer = self._customer(customer_id)
            for ident in add:
                holder = self._holder(scope, ident)
                if holder is not None and holder != customer.id:
                    raise ApiError(IDENTIFIER_IN_SAME_SOURCE,
                                   "The new identifier already exists in the same source.")
            survivors = {h for ident in add for h in self._holders_elsewhere(scope, ident)
                         if h != customer.id}
            if len(survivors) > 1:
                raise ApiError(CANNOT_MERGE, "Each identifier is registered with a different "
                                             "customer in other source. Unable to merge "
                                             "accounts.")
            warnings: list[dict[str, Any]] = []
            target = customer
            if survivors:
                target = self._customers[survivors.pop()]
                self._merge(victim=customer, survivor=target)
                warnings.append(warning_item(
                    MERGED_INTO, "Same identifier found in other source. Merging into the "
                                 f"account with user id {target.id}."))
            self._apply(target, scope, add, remove)
            return target.id, warnings

    def _apply(self, customer: Customer, scope: Scope, add: list[Identifier],
               remove: list[Identifier]) -> None:
        profile = customer.profile_for(scope)
        current = set(profile.identifiers) if profile else set()
        if not (current | set(add)) - set(remove):
            raise invalid_input("a profile needs at least one identifier")
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

    def _merge(self, victim: Customer, survivor: Customer) -> None:
        """The victim's profiles join the survivor, each source kept as its own entry; the
        survivor's subscriptions stand (the victim's fill only what it has none of: what
        Capillary does with them is not documented)."""
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

    # -- inspection (the sandbox's own views) --------------------------------------------------

    def all_customers(self) -> list[dict[str, Any]]:
        with self._lock:
            return [self._customers[cid].inspection() for cid in sorted(self._customers)]

    def customer(self, customer_id: int) -> dict[str, Any] | None:
        with self._lock:
            customer = self._customers.get(customer_id)
            return None if customer is None else customer.inspection()

    def live_count(self) -> int:
        with self._lock:
            return sum(1 for c in self._customers.values() if c.merged_into is None)
