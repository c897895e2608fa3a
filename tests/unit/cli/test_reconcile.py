"""`linecap reconcile` in-process against the fake LINE platform: what it prints, queues and
leaves alone, and its one-line answers."""

from __future__ import annotations

import json
import re

import pytest
import requests

from cli.main import main
from core.store.reconciliation import ReconciliationStore, Run
from core.store.state import StateStore
from tests.helpers import CHANNEL_ID, UNVERIFIED_CHANNEL, channels_json, new_user_id
from workers.registry import BULK_EVENTS_QUEUE


@pytest.fixture
def line(env, line_sandbox):
    env.setenv("LINE_API_BASE_URL", line_sandbox.url)
    return line_sandbox


def befriend(line_sandbox, *users: str) -> None:
    for user in users:
        requests.post(line_sandbox.url + "/sandbox/follow", timeout=5, json={
            "channel_id": CHANNEL_ID, "user_id": user, "deliver": False}).raise_for_status()


def fields(out: str) -> dict[str, str]:
    rows = [re.split(r"\s{2,}", line.strip()) for line in out.splitlines()]
    return {row[0]: row[1] for row in rows if len(row) == 2}


def test_a_dry_run_prints_what_differs_and_queues_nothing(redis, celery, line, capsys):
    users = [new_user_id(), new_user_id()]
    befriend(line, *users)
    missing = new_user_id()
    StateStore(redis, 60, 60, 30).finish_event("E1", "applied", CHANNEL_ID, missing,
                                               1_700_000_000_000, "followed")
    assert main(["reconcile", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert re.match(rf"channel {CHANNEL_ID} \(main\): completed \(dry run\), run \w+", out)
    counts = fields(out)
    assert counts["followers LINE lists"] == "2"
    assert counts["would queue: never applied"] == "2"
    assert counts["drift: following in linecap, not in LINE's list"] == "1"
    assert f"drift: {missing}" in out and "reported, not unfollowed" in out
    assert celery.sent == [] and redis.keys("linecap:history:*") == []
    assert ReconciliationStore(redis, 60).last(CHANNEL_ID) is None, "a dry run leaves no trace"


def test_a_pass_queues_follows_in_the_bulk_lane_and_keeps_its_summary(redis, celery, line,
                                                                      capsys):
    users = sorted([new_user_id(), new_user_id()])
    befriend(line, *users)
    assert main(["reconcile", "--channel", CHANNEL_ID]) == 0
    counts = fields(capsys.readouterr().out)
    assert counts["queued: never applied"] == "2"
    assert sorted(m["kwargs"]["event"]["source"]["userId"] for m in celery.sent) == users
    assert {(m["name"], m["queue"]) for m in celery.sent} == \
        {("linecap.process_event", BULK_EVENTS_QUEUE)}
    last = ReconciliationStore(redis, 60).last(CHANNEL_ID)
    assert last["status"] == "completed" and last["by"] == "cli"
    assert main(["reconcile", "--last", "--json"]) == 0
    [view] = json.loads(capsys.readouterr().out)
    assert view["last"]["run_id"] == last["run_id"] and view["running"] is None


def test_last_shows_the_run_in_progress_beside_the_last_one(redis, celery, line, capsys):
    befriend(line, new_user_id())
    assert main(["reconcile", "--channel", CHANNEL_ID]) == 0
    capsys.readouterr()
    running = Run.new(CHANNEL_ID, "schedule", repair=False)
    assert ReconciliationStore(redis, 60).start(running)
    assert main(["reconcile", "--last"]) == 0
    out = capsys.readouterr().out
    assert f"channel {CHANNEL_ID}: in progress (run {running.run_id} by schedule" in out
    assert re.search(rf"channel {CHANNEL_ID} \(main\): completed, run \w+", out)
    assert main(["reconcile", "--last", "--json"]) == 0
    [view] = json.loads(capsys.readouterr().out)
    assert view["running"]["run_id"] == running.run_id and view["last"]["by"] == "cli"


def test_an_unverified_account_is_one_line_and_exit_1(redis, celery, line, env, capsys):
    env.setenv("LINE_CHANNELS", channels_json(UNVERIFIED_CHANNEL))
    assert main(["reconcile", "--channel", UNVERIFIED_CHANNEL["channel_id"]]) == 1
    out = capsys.readouterr().out
    assert ": refused, run " in out
    assert "only verified or premium accounts have it" in out
    assert "Traceback" not in out


def test_a_run_in_progress_elsewhere_is_not_doubled(redis, celery, line, capsys):
    befriend(line, new_user_id())
    running = Run.new(CHANNEL_ID, "schedule", False)
    assert ReconciliationStore(redis, 60).start(running)
    assert main(["reconcile"]) == 1
    err = capsys.readouterr().err
    assert f"a reconciliation of channel {CHANNEL_ID} is in progress (run {running.run_id}" in err
    assert celery.sent == []
