"""The imitated Capillary endpoints: token, add customer, lookup, subscriptions, identifiers.

Handlers only parse, call the store and shape responses; auth, faults and logging
happen in ``pipeline`` so every endpoint gets them the same way.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request

from .errors import invalid_input
from .parsing import (
    json_body,
    lookup_from_query,
    loyalty_type,
    parse_profiles,
    scope_from_query,
)
from .pipeline import TOKEN_PATH, transport_error
from .state import get_state
from .validation import parse_identifiers, parse_subscriptions

api = Blueprint("capillary_api", __name__)


@api.post(TOKEN_PATH)
def generate_token() -> Any:
    """OAuth: key + secret → short-lived token for ``X-CAP-API-OAUTH-TOKEN``."""
    state = get_state()
    body = request.get_json(silent=True)
    body = body if isinstance(body, dict) else {}
    token = state.auth.issue(body.get("key"), body.get("secret"), state.config)
    if token is None:
        return transport_error(401)
    return {
        "data": {"accessToken": token, "ttlSeconds": state.config.token_ttl_seconds},
        "errors": None,
    }


@api.post("/v2/customers")
def add_customer() -> Any:
    """Add customer: new id, or the existing id with warning 8050 when combining."""
    state = get_state()
    body = json_body()
    profiles = parse_profiles(body, state.config.valid_accounts)
    created_id, warnings = state.store.register(profiles, loyalty_type(body))
    return {"createdId": created_id, "warnings": warnings, "sideEffects": []}


@api.get("/v2/customers/lookup/customerDetails")
def lookup_customer() -> Any:
    """Lookup by identifier in one source (or ALL); ``embed=subscriptions`` adds status."""
    state = get_state()
    scope, identifier = lookup_from_query(request.args, state.config.valid_accounts)
    customer = state.store.lookup(scope, identifier)
    body: dict[str, Any] = {
        "id": customer["id"],
        "profiles": customer["profiles"],
        "loyaltyInfo": customer["loyaltyInfo"],
    }
    embeds = {part.strip() for part in request.args.get("embed", "").split(",")}
    if "subscriptions" in embeds:
        body["subscriptions"] = customer["subscriptions"]
    body.update({"warnings": [], "errors": None})
    return body


def _subscriptions(customer_id: int) -> dict[str, Any]:
    state = get_state()
    if request.method == "POST":
        entries = parse_subscriptions(json_body(), state.config.valid_accounts)
        current = state.store.set_subscriptions(customer_id, entries)
    else:
        current = state.store.subscriptions(customer_id)
    return {"customerId": customer_id, "subscriptions": current, "warnings": [], "errors": None}


@api.route("/v2/customers/<int:customer_id>/subscriptions", methods=["GET", "POST"])
def customer_subscriptions(customer_id: int) -> Any:
    """Read (GET) or set (POST) subscription status by customer id."""
    return _subscriptions(customer_id)


@api.route("/v2/customers/lookup/subscriptions", methods=["GET", "POST"])
def lookup_subscriptions() -> Any:
    """Same as by id, after resolving the customer from the lookup query."""
    state = get_state()
    scope, identifier = lookup_from_query(request.args, state.config.valid_accounts)
    return _subscriptions(state.store.lookup_id(scope, identifier))


@api.post("/v2/customers/<int:customer_id>/changeIdentifier")
def change_identifier(customer_id: int) -> Any:
    """Add/remove identifiers on one source profile; merges when an added one is taken."""
    state = get_state()
    scope = scope_from_query(request.args, state.config.valid_accounts)
    body = json_body()
    add = parse_identifiers(body.get("add"), allow_empty=True)
    remove = parse_identifiers(body.get("remove"), allow_empty=True)
    if not add and not remove:
        raise invalid_input("add or remove must list identifiers")
    warnings = state.store.change_identifiers(customer_id, scope, add, remove)
    return {"customerId": customer_id, "warnings": warnings, "errors": None}
