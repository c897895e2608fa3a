"""Throughput under Capillary's budgets, on real processes: live events before bulk work,
batch registration with mixed answers, and a back-fill killed half-way then run again."""

from __future__ import annotations

import time

import requests

from core.store.connection import redis_client
from core.store.dead_letters import DeadLetterStore
from tests.helpers import CHANNEL_ID, SOURCE_ACCOUNT_ID, follow_event, new_user_id
from tests.integration.stack import Stack, wait_until
from tests.integration.test_cli import linecap, new_mobile, summary, write_users

BUDGET_RPM = 60


def add_friends(stack: Stack, count: int) -> list[str]:
    """Users who follow the account on LINE but whose follows never reached linecap."""
    users = [new_user_id() for _ in range(count)]
    for user in users:
        response = requests.post(f"{stack.line_url}/sandbox/follow", json={
            "channel_id": CHANNEL_ID, "user_id": user, "deliver": False}, timeout=10)
        response.raise_for_status()
    return users


def opted_in(stack: Stack) -> set[str]:
    return {i["value"] for c in stack.customers() if c.get("mergedInto") is None
            and stack.line_subscription(c, SOURCE_ACCOUNT_ID) == "OPTIN"
            for p in c["profiles"] if p["source"] == "LINE" for i in p["identifiers"]
            if i["type"] == "line"}


def test_a_live_follow_is_not_held_behind_a_back_fill(fresh_stack):
    stack = fresh_stack(CAPILLARY_RATE_LIMIT_RPM=str(BUDGET_RPM),
                        LINECAP_LIVE_RESERVE_PERCENT="20")
    stack.start_web()
    stack.start_worker(concurrency=2)
    followers = add_friends(stack, 60)
    result = linecap(stack, "backfill-followers")
    assert result.returncode == 0, result.stdout + result.stderr
    assert summary(result.stdout)["enqueued"] == "60"
    wait_until(lambda: len(opted_in(stack)) >= 5, 60, 0.5, "the back-fill under way")

    live = new_user_id()
    sent = time.monotonic()
    assert stack.send([follow_event(live)]).status_code == 200
    wait_until(lambda: live in opted_in(stack), 30, 0.2, "the live follow applied")
    latency = time.monotonic() - sent
    left = set(followers) - opted_in(stack)
    assert left, "the back-fill is still running: the live follow went before it"
    assert latency < 20, f"live follow took {latency:.1f} s during the back-fill"
    stats = requests.get(stack.capillary_url + "/sandbox/stats", timeout=5).json()
    assert stats["max_calls_in_any_60s_window"] <= BUDGET_RPM


def test_an_import_batch_with_mixed_answers_lands_each_row(fresh_stack, tmp_path):
    stack = fresh_stack(org="strict", CAPILLARY_BATCH_SIZE="10")
    stack.start_worker()
    member_mobile, taken = new_mobile(), new_user_id()
    member = stack.capillary_api("POST", "/v2/customers", {
        "loyaltyInfo": {"loyaltyType": "loyalty"},
        "profiles": [{"source": "INSTORE", "identifiers": [
            {"type": "mobile", "value": member_mobile}]}]}).json()["createdId"]
    first = linecap(stack, "import", str(write_users(tmp_path / "a.csv",
                                                     [[new_mobile(), taken, ""]])))
    assert first.returncode == 0, first.stdout + first.stderr
    rows = [[new_mobile(), new_user_id(), "New"], [member_mobile, new_user_id(), "Member"],
            [new_mobile(), taken, "Taken"]]
    result = linecap(stack, "import", str(write_users(tmp_path / "b.csv", rows)))
    counts = summary(result.stdout)
    assert (counts["registered"], counts["failed"]) == ("2", "1"), \
        result.stdout
    [joined] = stack.customers_with(rows[1][1])
    assert joined["id"] == member and joined["loyaltyInfo"]["loyaltyType"] == "loyalty"
    letters = DeadLetterStore(redis_client(stack.redis_url))
    [letter] = letters.list()
    assert letter.task == "linecap.import_user" and letter.error_class == "identity_conflict"
    bulk = [c for c in stack.calls() if c["path"] == "/v2/customers/bulk"]
    assert [len(c["body"]) for c in bulk][-2:] == [3, 3], "INSTORE, then LINE, one call each"


def test_a_back_fill_killed_half_way_and_run_again_registers_nobody_twice(fresh_stack):
    stack = fresh_stack(CAPILLARY_RATE_LIMIT_RPM="120", LINECAP_LIVE_RESERVE_PERCENT="0",
                        LINECAP_VISIBILITY_TIMEOUT_SECONDS="30",
                        LINECAP_RETRY_MAX_DELAY_SECONDS="15")
    stack.start_web()
    worker = stack.start_worker(concurrency=2)
    followers = add_friends(stack, 50)
    assert linecap(stack, "backfill-followers").returncode == 0
    wait_until(lambda: len(opted_in(stack)) >= 10, 60, 0.2, "some of the back-fill done")
    worker.kill()
    done_before = len(opted_in(stack))
    assert done_before < len(followers), "killed half-way"
    stack.start_worker(concurrency=2)
    again = linecap(stack, "backfill-followers")
    assert again.returncode == 0, again.stdout + again.stderr
    wait_until(lambda: set(followers) <= opted_in(stack), 180, 1, "every follower opted in")
    for user in followers:
        assert len(stack.customers_with(user)) == 1, f"{user} registered twice"
    assert DeadLetterStore(redis_client(stack.redis_url)).count() == 0
