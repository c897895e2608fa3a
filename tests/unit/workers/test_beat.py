"""The beat: a tick per channel with an interval, and only the process holding the lease sends
them, however many beats run."""

from __future__ import annotations

from datetime import timedelta

import pytest

from core.store.lease import Lease
from tests.helpers import CHANNEL_ID, base_env, channels_json
from workers import beat
from workers.beat import LeasedScheduler, reconciliation_schedule
from workers.celery_app import make_celery
from workers.registry import RECONCILE_QUEUE, RECONCILE_TASK

OTHER = {"name": "other", "channel_id": "1650000002", "channel_secret": "f" * 32,
         "access_token": "other-token", "source_account_id": "acc-2"}


def test_one_holder_at_a_time_until_it_lets_go_or_lapses(fake_redis):
    first, second = (Lease(fake_redis, "lease", 30, name) for name in ("first", "second"))
    assert first.hold() and not second.hold()
    assert first.hold(), "renewed by its holder"
    assert 29_000 < fake_redis.pttl("lease") <= 30_000
    first.release()
    assert second.hold() and not first.hold()
    fake_redis.delete("lease")  # the holder stopped renewing and it expired
    assert first.hold() and first.current_holder() == "first"


def test_a_tick_per_channel_with_an_interval(monkeypatch):
    from config import load_settings

    settings = load_settings(base_env(
        LINE_CHANNELS=channels_json(OTHER), LINECAP_BEAT_TICK_SECONDS="7",
        LINECAP_RECONCILE_CHANNEL_INTERVALS=f"{OTHER['channel_id']}=0"))
    entries = reconciliation_schedule(settings)
    assert list(entries) == [f"reconcile {CHANNEL_ID}"]
    entry = entries[f"reconcile {CHANNEL_ID}"]
    assert (entry["task"], entry["schedule"], entry["kwargs"]) == \
        (RECONCILE_TASK, 7.0, {"channel_id": CHANNEL_ID, "step": {}})
    assert entry["options"]["queue"] == RECONCILE_QUEUE
    assert entry["options"]["expires"] == 7, "a tick nobody took does not pile up"


@pytest.fixture
def schedulers(monkeypatch, fake_redis):
    for name, value in base_env(LINECAP_BEAT_TICK_SECONDS="1").items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(beat, "redis_client", lambda url, **kw: fake_redis)
    sent: list[tuple[str, str]] = []
    monkeypatch.setattr(LeasedScheduler, "apply_entry",
                        lambda self, entry, producer=None: sent.append((self.name, entry.name)))
    app = make_celery()
    made = []
    for name in ("first", "second"):
        scheduler = LeasedScheduler(app=app)
        scheduler.name = name
        scheduler.__dict__["producer"] = None  # no broker connection in a unit test
        for entry in scheduler.schedule.values():  # every tick due now
            entry.last_run_at = entry.default_now() - timedelta(seconds=10)
        made.append(scheduler)
    return made, sent


def ticks(scheduler: LeasedScheduler, n: int = 3) -> None:
    for _ in range(n):
        scheduler.tick()


def test_only_the_lease_holder_sends_and_a_standby_takes_over(schedulers):
    (first, second), sent = schedulers
    ticks(first)
    ticks(second)
    assert sent and {who for who, _ in sent} == {"first"}
    assert list(first.schedule) == [f"reconcile {CHANNEL_ID}"], "no backend_cleanup entry"
    first.close()  # a clean stop lets go of the lease at once
    sent.clear()
    for entry in second.schedule.values():
        entry.last_run_at = entry.default_now() - timedelta(seconds=10)
    second._heap = None
    ticks(second)
    assert {who for who, _ in sent} == {"second"}


def test_the_procfile_runs_the_leased_scheduler():
    from pathlib import Path

    procfile = (Path(__file__).resolve().parents[3] / "Procfile").read_text()
    line = next(line for line in procfile.splitlines() if line.startswith("beat:"))
    assert line == "beat: celery -A workers.celery_app " + " ".join(beat.BEAT_ARGS)


def test_a_beat_that_cannot_reach_redis_sends_nothing_and_says_so_once(schedulers, caplog):
    import logging

    import redis

    (first, _), sent = schedulers

    def unreachable():
        raise redis.ConnectionError("refused")

    first._lease.hold = unreachable
    with caplog.at_level(logging.INFO, logger="linecap.beat"):
        ticks(first)
    assert sent == []
    assert [r.getMessage() for r in caplog.records if r.name == "linecap.beat"] == [
        "beat lease unreachable (ConnectionError); sending nothing until Redis answers"]
