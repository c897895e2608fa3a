"""The modelled Capillary endpoints: token, add customer, lookup, fetch, subscriptions,
identifiers. Handlers parse, apply the org's rules, call the store and shape answers as
_customer.md's samples do; auth, budgets, faults and the call log are in ``pipeline``.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, request

from .errors import (
    BATCH_LIMIT,
    CHANNEL_NOT_CONFIGURED,
    ApiError,
    error_item,
    invalid_input,
    mandatory_field,
)
from .parsing import (
    json_body,
    json_object,
    lookup_from_query,
    parse_registration,
    scope_from_query,
)
from .pipeline import TOKEN_PATH, transport_error
from .rules import check_external_ids, check_registration
from .state import SandboxState, get_state
from .validation import (
    MULTI_ACCOUNT_SOURCES,
    SubscriptionKey,
    check_source,
    parse_identifiers,
    parse_subscription,
)

api = Blueprint("capillary_api", __name__)


@api.post(TOKEN_PATH)
def generate_token() -> Any:
    """OAuth (reference § Hosts and authentication): key + secret → a short-lived token."""
    state = get_state()
    body = request.get_json(silent=True)
    body = body if isinstance(body, dict) else {}
    token = state.auth.issue(body.get("key"), body.get("secret"), state.config)
    if token is None:
        return transport_error(401)
    return {"data": {"accessToken": token, "ttlSeconds": state.config.token_ttl_seconds},
            "errors": None}


@api.post("/v2/customers")
def add_customer() -> Any:
    """§ Register Customer: a new id, or the existing customer's with warning 8050."""
    state = get_state()
    profiles, loyalty = parse_registration(json_object(), state.config.valid_accounts)
    check_registration(profiles, loyalty, state.config.org)
    created_id, warnings = state.store.register(profiles, loyalty)
    return {"createdId": created_id, "warnings": warnings, "sideEffects": []}


@api.post("/v2/customers/bulk")
def add_customers() -> Any:
    """Batch registration: "Batch support is for normal customer registration" (_customer.md
    § Associate Customer with Customer/Hierarchy): an array of V2 add bodies, answered by one
    element per item, in order: `entity` (id, profiles, warnings) or that item's `errors`
    (reference § Batch registration). Each item stands alone: one refused never undoes
    another. HTTP 200 when all succeeded, 201 when one or more failed, 500 when all failed
    (index.html.md § HTTP Status Codes); over the org's limit the whole batch is 1060."""
    state = get_state()
    items = json_body()
    if not isinstance(items, list) or not items:
        raise invalid_input("a batch must be a non-empty JSON array of registrations")
    if len(items) > state.config.org.bulk_limit:
        raise ApiError(BATCH_LIMIT, "Batch limit size exceeded.")
    answers = [_register_one(state, item) for item in items]
    failed = sum("errors" in answer for answer in answers)
    status = 200 if not failed else 500 if failed == len(answers) else 201
    return jsonify(answers), status


def _register_one(state: SandboxState, item: Any) -> dict[str, Any]:
    try:
        profiles, loyalty = parse_registration(item, state.config.valid_accounts)
        check_registration(profiles, loyalty, state.config.org)
        created_id, warnings = state.store.register(profiles, loyalty)
    except ApiError as exc:
        return {"errors": [error_item(exc.code, exc.message)], "warnings": []}
    entity = state.store.fetch(created_id, "ALL", None, embed_subscriptions=False)
    return {"entity": {**entity, "warnings": warnings}}


def _embeds_subscriptions() -> bool:
    return "subscriptions" in {part.strip() for part in request.args.get("embed", "").split(",")}


@api.get("/v2/customers/lookup/customerDetails")
def lookup_customer() -> Any:
    """§ Lookup (customerDetails): the customer holding an identifier in one source (or ALL),
    with only that source's profiles; `embed=subscriptions` nests the status."""
    state = get_state()
    scope, identifier = lookup_from_query(request.args, state.config.valid_accounts,
                                          state.config.org)
    document = state.store.lookup(scope, identifier, _embeds_subscriptions())
    return {**document, "warnings": []}


@api.get("/v2/customers/<int:customer_id>")
def fetch_customer(customer_id: int) -> Any:
    """§ Fetch Customer Details (by User ID): `source*` (ALL for every source)."""
    state = get_state()
    source = check_source(request.args.get("source"), allow_all=True)
    account = request.args.get("accountId") or None
    if source in MULTI_ACCOUNT_SOURCES and account is None:
        scope_from_query(request.args, state.config.valid_accounts)  # 8045
    document = state.store.fetch(customer_id, source, account, _embeds_subscriptions())
    return {**document, "warnings": []}


def _subscription_entries(state: SandboxState) -> list[tuple[SubscriptionKey, str]]:
    """The entries of an Update Subscription Details body; any bad entry refuses the call."""
    body = json_object()
    raw = body.get("subscriptions")
    if not isinstance(raw, list) or not raw:
        raise invalid_input("subscriptions must be a non-empty list")
    rules = state.config.org
    entries = []
    for item in raw:
        key, kind = parse_subscription(item, state.config.valid_accounts)
        if rules.subscription_requires_org_unit and not _positive_int(item.get("orgUnitId")):
            # reference § Subscriptions: "orgUnitId is marked required on the current page";
            # index.html.md: 403 "Mandatory field is missing. Field {x} is mandatory."
            raise mandatory_field("orgUnitId")
        if key[0] not in rules.configured_channels:
            # reference § Subscriptions: channels must be configured (the LINE gateway).
            raise ApiError(CHANNEL_NOT_CONFIGURED, "Unable to add, update or fetch "
                                                   f"subscription details ({key[0]} channel "
                                                   "is not configured).")
        entries.append((key, kind))
    return entries


def _subscriptions_answer(current: list[dict[str, Any]]) -> dict[str, Any]:
    # _customer.md § Update Subscription Details / § Get Subscription Details: top level.
    return {"subscriptions": current, "campaignId": -1, "communicationId": -1, "warnings": []}


@api.route("/v2/customers/<int:customer_id>/subscriptions", methods=["GET", "POST"])
def customer_subscriptions(customer_id: int) -> Any:
    state = get_state()
    if request.method == "POST":
        current = state.store.set_subscriptions(customer_id, _subscription_entries(state))
    else:
        current = state.store.subscriptions(customer_id)
    return _subscriptions_answer(current)


@api.route("/v2/customers/lookup/subscriptions", methods=["GET", "POST"])
def lookup_subscriptions() -> Any:
    """By identifier. Writes for a customer nobody registered are ignored without an error
    (reference § Subscriptions: "requests for unregistered customers ... are ignored")."""
    state = get_state()
    scope, identifier = lookup_from_query(request.args, state.config.valid_accounts,
                                          state.config.org)
    if request.method == "GET":
        return _subscriptions_answer(
            state.store.subscriptions(state.store.lookup_id(scope, identifier)))
    entries = _subscription_entries(state)
    try:
        customer_id = state.store.lookup_id(scope, identifier)
    except ApiError:
        return _subscriptions_answer([])
    return _subscriptions_answer(state.store.set_subscriptions(customer_id, entries))


@api.post("/v2/customers/<int:customer_id>/changeIdentifier")
def change_identifier(customer_id: int) -> Any:
    """§ Update Customer Identifiers: add/remove on the profile in `source` (+ accountId);
    an added identifier held in another source merges this customer into its holder."""
    state = get_state()
    scope = scope_from_query(request.args, state.config.valid_accounts)
    body = json_object()
    add = parse_identifiers(body.get("add"), allow_empty=True)
    remove = parse_identifiers(body.get("remove"), allow_empty=True)
    if not add and not remove:
        raise invalid_input("add or remove must list identifiers")
    check_external_ids(add, state.config.org)
    survivor, warnings = state.store.change_identifiers(customer_id, scope, add, remove)
    return {"createdId": survivor, "warnings": warnings}


def _positive_int(value: Any) -> bool:
    try:
        return int(value) > 0
    except (TypeError, ValueError):
        return False
