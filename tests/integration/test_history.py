"""A user's history on real processes: a follow retried twice (Capillary failing), LINE
redelivering it, an unfollow dead-lettered and replayed by an operator, each step in order in
`linecap history`, the ops API and `linecap check`'s answer."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import requests

from tests.helpers import CHANNEL_ID, SOURCE_ACCOUNT_ID, follow_event, new_user_id
from tests.integration.stack import ROOT, Stack, dump, wait_until

LINECAP = Path(sys.executable).parent / "linecap"
OPS_KEY = "ops-key-for-history-tests-0123"
AUTH = {"Authorization": f"Bearer {OPS_KEY}"}
SUBSCRIPTIONS = "POST /v2/customers/{id}/subscriptions"


def linecap(stack: Stack, *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run([str(LINECAP), *args], env=stack.env(), cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert "Traceback" not in result.stderr, result.stderr
    return result


def subscription(stack: Stack, user_id: str) -> str | None:
    found = stack.customers_with(user_id)
    return stack.line_subscription(found[0], SOURCE_ACCOUNT_ID) if found else None


def steps(entries: list[dict]) -> list[tuple]:
    """Each entry in short: (kind, event, outcome / status / queue, attempt or call)."""
    short = []
    for entry in entries:
        if entry["kind"] == "call":
            short.append(("call", entry["event"], entry["status"], entry["call"]))
        elif entry["kind"] == "received":
            short.append(("received", entry["event"], entry["queue"], entry["redelivery"]))
        elif entry["kind"] == "outcome":
            short.append(("outcome", entry["event"], entry["outcome"], entry["attempt"]))
        else:
            short.append((entry["kind"], entry["event"], entry.get("by"), None))
    return short


def test_the_history_of_a_follow_retried_twice_an_unfollow_and_a_replay(fresh_stack):
    stack = fresh_stack(LINECAP_OPS_API_KEYS=OPS_KEY)
    stack.start_web()
    stack.start_worker()
    user = new_user_id()

    # Follow: the subscription call fails on two runs (three quick tries each), then works.
    stack.faults(fail_next=[{"status": 503, "path_contains": "/subscriptions", "method": "POST",
                             "count": 6}])
    follow = follow_event(user)
    assert stack.send([follow]).status_code == 200
    wait_until(lambda: subscription(stack, user) == "OPTIN", 60, 0.5, "follow applied")
    # LINE redelivers it: acknowledged, skipped.
    redelivered = {**follow, "deliveryContext": {"isRedelivery": True}}
    assert stack.send([redelivered]).status_code == 200

    # Unfollow: refused for good once (a dead letter), then replayed by an operator.
    stack.faults(fail_next=[{"status": 400, "path_contains": "/subscriptions", "method": "POST"}])
    unfollow = follow_event(user, kind="unfollow")
    assert stack.send([unfollow]).status_code == 200
    letter_url = f"{stack.web_url}/ops/dead-letters/{unfollow['webhookEventId']}"
    wait_until(lambda: requests.get(letter_url, headers=AUTH, timeout=5).status_code == 200,
               60, 0.5, "unfollow dead-lettered")
    assert requests.post(letter_url + "/replay", headers=AUTH, timeout=5).status_code == 200
    wait_until(lambda: subscription(stack, user) == "OPTOUT", 60, 0.5, "replay applied")

    body = wait_until(lambda: (lambda b: b if b["entries"][-1]["kind"] == "outcome" and
                               b["entries"][-1]["event"] == unfollow["webhookEventId"] else None)(
        requests.get(f"{stack.web_url}/ops/users/{CHANNEL_ID}/{user}", headers=AUTH,
                     timeout=5).json()), 20, 0.5, "the replay's outcome recorded")
    f, u = follow["webhookEventId"], unfollow["webhookEventId"]
    lookup, add = "GET /v2/customers/lookup/customerDetails", "POST /v2/customers"
    assert steps(body["entries"]) == [
        ("received", f, "line-events", False),
        ("call", f, "400", lookup), ("call", f, "200", add), ("call", f, "200", add),
        *[("call", f, "503", SUBSCRIPTIONS)] * 3,
        ("outcome", f, "retried", 1),
        *[("call", f, "503", SUBSCRIPTIONS)] * 3,
        ("outcome", f, "retried", 2),
        ("call", f, "200", SUBSCRIPTIONS),
        ("outcome", f, "applied", 3),
        ("received", f, "line-events", True),
        ("outcome", f, "duplicate", 1),
        ("received", u, "line-events", False),
        ("call", u, "400", SUBSCRIPTIONS),
        ("outcome", u, "dead_lettered", 1),
        ("replayed", u, "ops API (127.0.0.1)", None),
        ("received", u, "line-events-bulk", False),
        ("call", u, "200", SUBSCRIPTIONS),
        ("outcome", u, "applied", 1),
    ], dump(body["entries"])
    entries = body["entries"]
    assert all(a["at"] <= b["at"] for a, b in zip(entries, entries[1:], strict=False))
    retried = [e for e in entries if e.get("outcome") == "retried"]
    assert all("503" in e["reason"] and e["again_in_s"] > 0 for e in retried)
    dead = next(e for e in entries if e.get("outcome") == "dead_lettered")
    assert dead["reason"].startswith("invalid_input: POST /v2/customers/{id}/subscriptions")
    assert body["explanation"].startswith(f"not opted in because: unfollow {u} applied at ")

    # The same story on the command line, and `linecap check`'s answer points to it.
    shown = linecap(stack, "history", "--line-user", user)
    assert shown.returncode == 0, shown.stderr
    table = shown.stdout.split("\n\n", 1)[1].splitlines()[1:]
    assert len(table) == len(entries)
    assert [re.split(r"\s{2,}", row)[1] for row in table] == \
        [f"{e['type']} {e['event']}" if e.get("type") else e["event"]
         for e in entries], shown.stdout
    checked = linecap(stack, "check", "--line-user", user, "--json")
    view = json.loads(checked.stdout)
    assert view["line_subscription"] == "OPTOUT"
    assert view["why"].startswith(f"not opted in because: unfollow {u} applied at ")
    text = linecap(stack, "check", "--line-user", user).stdout
    assert f"linecap history --line-user {user} --channel {CHANNEL_ID}" in text
