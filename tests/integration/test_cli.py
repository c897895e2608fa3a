"""The `linecap` CLI as an operator runs it: a subprocess against real sandboxes, web and worker."""

from __future__ import annotations

import csv
import json
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from core.store.connection import redis_client
from core.store.dead_letters import DeadLetterStore
from core.store.state import StateStore
from tests.helpers import CHANNEL_ID, SOURCE_ACCOUNT_ID, new_user_id
from tests.integration.stack import ROOT, Stack, database_url, dump, wait_until

LINECAP = Path(sys.executable).parent / "linecap"
CLI_REDIS_DB = 7


@pytest.fixture(scope="module")
def stack(redis_url, tmp_path_factory):
    """This module's own system, on its own Redis database, stopped when the module ends.

    The session-wide `stack` would keep its worker consuming the shared Redis queues, and take
    the messages of the `fresh_stack` tests that run after this module.
    """
    with Stack(database_url(redis_url, CLI_REDIS_DB),
               tmp_path_factory.mktemp("cli-logs")).running() as own:
        yield own


def linecap(stack: Stack, *args: str, timeout: float = 90) -> subprocess.CompletedProcess:
    result = subprocess.run([str(LINECAP), *args], env=stack.env(), cwd=ROOT,
                            capture_output=True, text=True, timeout=timeout)
    assert "Traceback" not in result.stderr, result.stderr
    return result


def summary(out: str) -> dict[str, str]:
    fields = [re.split(r"\s{2,}", line.strip(), maxsplit=2) for line in out.splitlines()]
    return {parts[0]: parts[1] for parts in fields if len(parts) > 1}


def new_mobile() -> str:
    return "66" + "".join(secrets.choice("0123456789") for _ in range(9))


def opted_in(stack: Stack, user_id: str) -> list[dict] | None:
    found = stack.customers_with(user_id)
    if found and stack.line_subscription(found[0], SOURCE_ACCOUNT_ID) == "OPTIN":
        return found
    return None


def sources(customer: dict) -> list[str]:
    return sorted(p["source"] for p in customer["profiles"])


def registrations(stack: Stack) -> int:
    return sum(1 for c in stack.calls() if c["method"] == "POST" and c["path"] == "/v2/customers")


def test_send_event_follow_reaches_capillary(stack):
    user = new_user_id()
    result = linecap(stack, "send-event", "follow", "--user", user, "--url", stack.web_url)
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(r"HTTP 200  webhookEventId [0-9A-Z]{26}\n", result.stdout), result.stdout
    customers = wait_until(lambda: opted_in(stack, user), message="customer opted in")
    assert len(customers) == 1 and sources(customers[0]) == ["INSTORE", "LINE"]


def test_send_event_with_a_wrong_secret_exits_1(stack):
    env_channel = json.loads(stack.env()["LINE_CHANNELS"])
    env_channel[0]["channel_secret"] = "0" * 32
    stack.env_overrides["LINE_CHANNELS"] = json.dumps(env_channel)
    try:
        result = linecap(stack, "send-event", "follow", "--user", new_user_id(),
                         "--url", stack.web_url)
    finally:
        del stack.env_overrides["LINE_CHANNELS"]
    assert result.returncode == 1
    assert result.stdout.startswith("HTTP 401")


def test_register_then_check_show_one_customer(stack):
    user, mobile = new_user_id(), new_mobile()
    result = linecap(stack, "register", "--mobile", "+" + mobile, "--line-user", user,
                     "--name", "Somchai")
    assert result.returncode == 0, result.stdout + result.stderr
    registered = summary(result.stdout)
    assert (registered["registration"], registered["same customer"]) == ("new", "yes")
    customers = stack.customers_with(mobile)
    assert len(customers) == 1 and sources(customers[0]) == ["INSTORE", "LINE"], dump(customers)
    assert registered["customer"] == str(customers[0]["id"])

    by_user = linecap(stack, "check", "--line-user", user)
    assert by_user.returncode == 0, by_user.stdout + by_user.stderr
    assert summary(by_user.stdout)["mapping"] == "complete"
    by_mobile = linecap(stack, "check", "--mobile", mobile, "--json")
    assert by_mobile.returncode == 0
    view = json.loads(by_mobile.stdout)
    assert view["customer_id"] == customers[0]["id"] and view["same_customer"] is True
    assert view["line_profile"]["accountId"] == SOURCE_ACCOUNT_ID
    assert view["line_subscription"] is None  # registering is not following

    again = linecap(stack, "register", "--mobile", mobile, "--line-user", user)
    assert again.returncode == 0
    assert (summary(again.stdout)["customer"], summary(again.stdout)["registration"]) == \
        (registered["customer"], "already registered")
    assert len(stack.customers_with(mobile)) == 1


def test_register_refuses_a_line_user_already_on_another_customer(stack):
    """A follow made a LINE-only customer; registering a mobile must not add a stray one."""
    user, mobile = new_user_id(), new_mobile()
    linecap(stack, "send-event", "follow", "--user", user, "--url", stack.web_url)
    line_only = wait_until(lambda: opted_in(stack, user), message="LINE-only customer")[0]
    result = linecap(stack, "register", "--mobile", mobile, "--line-user", user)
    assert result.returncode == 1
    assert result.stderr == f"linecap: LINE user is already customer {line_only['id']}, whose " \
        "INSTORE profile does not hold this mobile; link them in Member Care\n"
    assert stack.customers_with(mobile) == []


def test_check_of_an_unknown_user_exits_1(stack):
    result = linecap(stack, "check", "--line-user", new_user_id())
    assert result.returncode == 1
    assert summary(result.stdout)["customer"] == "not found"


def test_check_of_an_instore_only_customer_is_incomplete(stack):
    mobile = new_mobile()
    stack.capillary_api("POST", "/v2/customers", {
        "loyaltyInfo": {"loyaltyType": "non_loyalty"},
        "profiles": [{"source": "INSTORE", "identifiers": [{"type": "mobile", "value": mobile}]}]})
    result = linecap(stack, "check", "--mobile", mobile, "--json")
    assert result.returncode == 1
    view = json.loads(result.stdout)
    assert view["instore_profile"] is not None and view["line_profile"] is None
    assert view["complete"] is False


def test_register_sends_a_parked_follow_on(stack):
    user, mobile = new_user_id(), new_mobile()
    parked = {"type": "follow", "mode": "active", "timestamp": 1_700_000_000_000,
              "source": {"type": "user", "userId": user},
              "webhookEventId": "PARKED" + secrets.token_hex(10).upper(),
              "deliveryContext": {"isRedelivery": False}}
    state = StateStore(redis_client(stack.redis_url), 60, 60, 60)
    state.park(CHANNEL_ID, user, parked)
    result = linecap(stack, "register", "--mobile", mobile, "--line-user", user)
    assert result.returncode == 0, result.stdout + result.stderr
    assert summary(result.stdout)["parked event"] == \
        f"re-enqueued (webhookEventId {parked['webhookEventId']})"
    wait_until(lambda: opted_in(stack, user), message="parked follow applied")
    assert f"{CHANNEL_ID}:{user}" not in state.parked()
    assert len(stack.customers_with(mobile)) == 1


def write_users(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["mobile", "line_user_id", "name"])
        writer.writerows(rows)
    return path


def test_import_registers_valid_rows_once(stack, tmp_path):
    people = [(new_mobile(), new_user_id()) for _ in range(4)]
    rows = [[m, u, f"Person {i}"] for i, (m, u) in enumerate(people)]
    rows.insert(2, ["12345", new_user_id(), "Bad mobile"])
    path = write_users(tmp_path / "users.csv", rows)

    first = linecap(stack, "import", str(path))
    assert first.returncode == 1, first.stdout + first.stderr  # one invalid row
    counts = summary(first.stdout)
    assert (counts["invalid"], counts["enqueued"], counts["registered"], counts["failed"]) == \
        ("1", "4", "4", "0"), first.stdout
    errors = (tmp_path / "users.csv.errors.csv").read_text()
    assert "4,mobile," in errors
    for mobile, user in people:
        customers = stack.customers_with(user)
        assert len(customers) == 1 and sources(customers[0]) == ["INSTORE", "LINE"]
        assert customers == stack.customers_with(mobile)

    before = registrations(stack)
    second = linecap(stack, "import", str(path))
    counts = summary(second.stdout)
    assert (counts["done before"], counts["enqueued"]) == ("4", "0"), second.stdout
    assert registrations(stack) == before


def test_import_of_people_already_registered_counts_them(stack, tmp_path):
    mobile, user = new_mobile(), new_user_id()
    assert linecap(stack, "register", "--mobile", mobile, "--line-user", user).returncode == 0
    result = linecap(stack, "import", str(write_users(tmp_path / "u.csv", [[mobile, user, ""]])))
    assert result.returncode == 0, result.stdout + result.stderr
    assert summary(result.stdout)["already there"] == "1"
    assert len(stack.customers_with(mobile)) == 1


def test_import_row_that_fails_is_dead_lettered_and_replays(stack, tmp_path):
    mobile, user = new_mobile(), new_user_id()
    path = write_users(tmp_path / "users.csv", [[mobile, user, ""]])
    stack.faults(fail_next=[{"status": 400, "path_contains": "/v2/customers", "method": "POST"}])
    failed = linecap(stack, "import", str(path))
    assert failed.returncode == 1 and summary(failed.stdout)["failed"] == "1", failed.stdout
    letters = json.loads(linecap(stack, "dlq", "list", "--json", "--limit", "500").stdout)
    letter = next(entry for entry in letters if entry["event"].get("line_user_id") == user)
    assert letter["task"] == "linecap.import_user" and letter["error_class"] == "invalid_input"

    replay = linecap(stack, "dlq", "replay", letter["event_id"])
    assert replay.returncode == 0, replay.stderr
    wait_until(lambda: stack.customers_with(user), message="replayed row registered")
    assert DeadLetterStore(redis_client(stack.redis_url)).get(letter["event_id"]) is None
    again = linecap(stack, "import", str(path))
    assert again.returncode == 0 and summary(again.stdout)["done before"] == "1", again.stdout


def test_dlq_replay_reapplies_a_dead_lettered_follow(stack):
    user = new_user_id()
    stack.faults(fail_next=[{"status": 400, "path_contains": "/subscriptions", "method": "POST"}])
    sent = linecap(stack, "send-event", "follow", "--user", user, "--url", stack.web_url)
    event_id = sent.stdout.split()[-1]
    dead = DeadLetterStore(redis_client(stack.redis_url))
    wait_until(lambda: dead.get(event_id), message="follow dead-lettered")
    assert stack.line_subscription(stack.customers_with(user)[0], SOURCE_ACCOUNT_ID) is None

    shown = linecap(stack, "dlq", "show", event_id)
    assert json.loads(shown.stdout)["event"]["source"]["userId"] == user
    replay = linecap(stack, "dlq", "replay", event_id)
    assert replay.returncode == 0 and replay.stdout == f"replayed {event_id}\n"
    wait_until(lambda: opted_in(stack, user), message="replayed follow opted in")
    assert dead.get(event_id) is None
    assert linecap(stack, "dlq", "replay", event_id).returncode == 1


def test_backfill_followers_opts_every_follower_in(stack):
    users = [new_user_id() for _ in range(3)]
    for user in users:
        response = requests.post(stack.line_url + "/sandbox/follow", timeout=5,
                                 json={"channel_id": CHANNEL_ID, "user_id": user,
                                       "deliver": False})
        assert response.status_code == 200, response.text
    assert stack.customers_with(users[0]) == []  # nothing delivered: linecap does not know yet

    result = linecap(stack, "backfill-followers", "--channel", CHANNEL_ID)
    assert result.returncode == 0, result.stdout + result.stderr
    counts = summary(result.stdout)
    assert int(counts["enqueued"]) >= 3 and counts["followers"] == str(
        int(counts["enqueued"]) + int(counts["already synced today"]))
    for user in users:
        wait_until(lambda u=user: opted_in(stack, u), message=f"{user} opted in")

    before = registrations(stack)
    wait_until(lambda: summary(linecap(stack, "backfill-followers").stdout)["enqueued"] == "0",
               timeout=30, interval=1, message="second backfill finds everyone synced")
    assert registrations(stack) == before
    assert all(len(stack.customers_with(user)) == 1 for user in users)
