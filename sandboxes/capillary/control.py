"""Unauthenticated ``/sandbox/*`` endpoints: inspect what clients did and steer faults."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, request

from .org import org_view
from .state import get_state

control = Blueprint("capillary_sandbox_control", __name__, url_prefix="/sandbox")


def _bad_request(message: str) -> tuple[dict[str, Any], int]:
    return {"error": message}, 400


@control.get("/customers")
def list_customers() -> Any:
    """Every customer, merged victims included (``mergedInto`` set)."""
    return {"customers": get_state().store.all_customers()}


@control.get("/customers/<int:customer_id>")
def show_customer(customer_id: int) -> Any:
    """One customer by id, merged or not."""
    customer = get_state().store.customer(customer_id)
    if customer is None:
        return {"error": "customer not found"}, 404
    return customer


@control.get("/calls")
def list_calls() -> Any:
    """Call log entries after ``since`` (a seq; 0 = from the start)."""
    try:
        since = int(request.args.get("since", "0"))
    except ValueError:
        return _bad_request("since must be an integer")
    return {"calls": get_state().calls.since(since)}


@control.get("/stats")
def stats() -> Any:
    """Counts per (method, route, status), busiest 60 s window, live customer count."""
    state = get_state()
    return {**state.calls.stats(), "customers": state.store.live_count()}


def _changed(update: Callable[[dict], Any], view: Callable[[], Any]) -> Any:
    """Apply a JSON object body with `update`; the new view, or 400 with the reason."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return _bad_request("JSON object body required")
    try:
        update(body)
    except ValueError as exc:
        return _bad_request(str(exc))
    return view()


@control.get("/faults")
def show_faults() -> Any:
    """Current fault settings and pending one-shot faults."""
    return get_state().fault_view()


@control.post("/faults")
def update_faults() -> Any:
    """Change fault fields live; ``fail_next`` replaces the one-shot queue."""
    state = get_state()
    return _changed(state.update_faults, state.fault_view)


@control.get("/org")
def show_org() -> Any:
    """The org's switches (registration rules, lookup names, budgets, ...)."""
    return org_view(get_state().config.org)


@control.post("/org")
def update_org() -> Any:
    """Change some of the org's switches live (a JSON object of switch: value)."""
    state = get_state()
    return _changed(state.update_org, lambda: org_view(state.config.org))


@control.post("/accounts")
def update_accounts() -> Any:
    """Set ``valid_accounts`` (a list, or null for "any accountId")."""
    body = request.get_json(silent=True)
    accounts = body.get("valid_accounts", ...) if isinstance(body, dict) else ...
    if accounts is not None and not isinstance(accounts, list):
        return _bad_request('body must be {"valid_accounts": [..] | null}')
    state = get_state()
    state.set_accounts(accounts)
    valid = state.config.valid_accounts
    return {"valid_accounts": None if valid is None else sorted(valid)}


@control.post("/reset")
def reset() -> Any:
    """Empty customers and calls; faults and accounts back to startup config."""
    get_state().reset()
    return {"status": "reset"}
