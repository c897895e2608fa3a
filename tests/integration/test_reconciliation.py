"""Reconciliation on real processes: the beat (Procfile's command), Celery workers, the fake
LINE platform's follower list and the Capillary sandbox over HTTP.

Each system gets its own Redis database (fresh_stack): a beat and a worker of one test must not
see another's queues or leases.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import requests

from tests.helpers import CHANNEL_ID, SOURCE_ACCOUNT_ID, new_user_id
from tests.integration.stack import ROOT, Stack, dump, wait_until

LINECAP = Path(sys.executable).parent / "linecap"
OPS_KEY = "ops-key-for-reconciliation-tests"
SENT = "Sending due task reconcile"


def opted_in(stack: Stack, user_id: str) -> list[dict] | None:
    found = stack.customers_with(user_id)
    if found and stack.line_subscription(found[0], SOURCE_ACCOUNT_ID) == "OPTIN":
        return found
    return None


def reconciliation(stack: Stack) -> dict:
    response = requests.get(stack.web_url + "/ops/reconciliation", timeout=5,
                            headers={"Authorization": f"Bearer {OPS_KEY}"})
    assert response.status_code == 200, response.text
    return response.json()["channels"][CHANNEL_ID]


def linecap(stack: Stack, *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run([str(LINECAP), *args], env=stack.env(), cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert "Traceback" not in result.stderr, result.stderr
    return result


def log_lines(proc, text: str) -> list[dict]:
    """The JSON log lines of a process whose message contains `text`."""
    found = []
    for line in proc.log().splitlines():
        if line.startswith("{") and text in line:
            found.append(json.loads(line))
    return found


def test_a_follower_whose_webhook_never_arrived_is_opted_in_by_the_next_run(fresh_stack):
    stack = fresh_stack(LINECAP_RECONCILE_INTERVAL_SECONDS="4", LINECAP_BEAT_TICK_SECONDS="1",
                        LINECAP_OPS_API_KEYS=OPS_KEY)
    stack.start_web()
    stack.start_worker()
    stack.start_beat()
    first = wait_until(lambda: reconciliation(stack)["last"], 30, 0.5, "a first run")
    assert first["status"] == "completed" and first["counts"].get("followers", 0) == 0

    user = new_user_id()
    stack.befriend(user)  # LINE sends no follow webhook for this user
    assert stack.customers_with(user) == []
    customers = wait_until(lambda: opted_in(stack, user), 60, 0.5, "follower opted in")
    assert len(customers) == 1 and sorted(p["source"] for p in customers[0]["profiles"]) == \
        ["INSTORE", "LINE"]

    last = wait_until(lambda: (lambda s: s if user in s.get("queued_sample", []) else None)(
        reconciliation(stack)["last"] or {}), 30, 0.5, "the run that found the user")
    assert last["counts"]["never_applied"] == 1 and last["counts"]["followers"] == 1
    shown = linecap(stack, "history", "--line-user", user, "--json")
    assert shown.returncode == 0, shown.stdout + shown.stderr
    entries = json.loads(shown.stdout)["entries"]
    assert {e["event"] for e in entries} == {f"reconcile-{last['run_id']}-{user}"}
    assert [(e["kind"], e.get("queue") or e.get("outcome") or e.get("status")) for e in
            entries] == [("queued", None), ("received", "line-events-bulk"), ("call", "400"),
                         ("call", "200"), ("call", "200"), ("call", "200"),
                         ("outcome", "applied")], dump(entries)
    assert entries[0]["by"] == f"reconciliation {last['run_id']}"


def test_a_second_beat_stands_by_and_does_not_double_the_work(fresh_stack):
    stack = fresh_stack(LINECAP_RECONCILE_INTERVAL_SECONDS="3600",
                        LINECAP_BEAT_TICK_SECONDS="1")
    users = [new_user_id() for _ in range(3)]
    for user in users:
        stack.befriend(user)
    stack.start_worker()
    first = stack.start_beat()
    wait_until(lambda: log_lines(first, "beat lease held"), 20, 0.2, "first beat leads")
    second = stack.start_beat()
    wait_until(lambda: log_lines(second, "standing by"), 20, 0.2, "second beat stands by")

    for user in users:
        wait_until(lambda u=user: opted_in(stack, u), 60, 0.5, f"{user} opted in")
    wait_until(lambda: first.log().count(SENT) >= 5, 30, 0.5, "five ticks sent")
    assert SENT not in second.log(), "the beat without the lease sends nothing"
    assert len(stack.line_requests("/v2/bot/followers/ids")) == 1, "one run, one page"
    registrations = [c for c in stack.calls()
                     if c["method"] == "POST" and c["path"] == "/v2/customers"]
    assert len(registrations) == 2 * len(users), dump(registrations)

    first.stop()  # a clean stop lets go of the lease: the standby takes over
    wait_until(lambda: log_lines(second, "beat lease held"), 30, 0.5, "second beat leads")
    wait_until(lambda: second.log().count(SENT) >= 2, 30, 0.5, "second beat sends ticks")
    assert len(stack.line_requests("/v2/bot/followers/ids")) == 1, "the run is not due again"


def test_an_account_that_is_not_verified_gets_one_warning_per_run(fresh_stack):
    stack = fresh_stack(line_verified=False, LINECAP_RECONCILE_INTERVAL_SECONDS="2",
                        LINECAP_BEAT_TICK_SECONDS="1", LINECAP_OPS_API_KEYS=OPS_KEY)
    stack.start_web()
    worker = stack.start_worker()
    beat = stack.start_beat()
    wait_until(lambda: len(log_lines(worker, "reconciliation skipped")) >= 3, 60, 0.5,
               "three runs")
    beat.stop()
    time.sleep(2)  # a tick nobody took expires after LINECAP_BEAT_TICK_SECONDS
    # Let the last tick that was already taken finish.
    wait_until(lambda: len(log_lines(worker, "reconciliation started")) ==
               len(log_lines(worker, "reconciliation skipped")), 20, 0.5, "runs ended")
    started = log_lines(worker, "reconciliation started")
    warnings = log_lines(worker, "reconciliation skipped")
    assert len(warnings) == len(started) >= 3, "one warning per run"
    assert {w["level"] for w in warnings} == {"warning"}
    assert all("only verified or premium accounts have it" in w["msg"] for w in warnings)
    assert len({w["run"] for w in warnings}) == len(warnings)
    assert len(stack.line_requests("/v2/bot/followers/ids")) == len(started), "no retry loop"
    assert "Traceback" not in worker.log()
    last = reconciliation(stack)["last"]
    assert last["status"] == "refused" and "HTTP 403" in last["message"]
