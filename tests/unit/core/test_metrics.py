"""Metrics add up across forked processes, outlive them where they should, and count the right
things: webhook outcomes and Redis queue state (task outcomes: tests/unit/workers)."""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path

import fakeredis
import redis
from prometheus_client import CollectorRegistry
from prometheus_client.mmap_dict import MmapedDict, mmap_key
from redis.backoff import NoBackoff
from redis.retry import Retry

from app import create_app
from cli.localstack.ports import free_port
from core.metrics import (
    DIR_VAR,
    OWNER_VAR,
    LiveProcessCollector,
    forget_process,
    get_metrics,
    multiprocess_registry,
    prepare_multiprocess_dir,
)
from core.store.dead_letters import INDEX as DEAD_LETTER_INDEX
from core.store.delayed_jobs import DelayedJob, DelayedJobs
from tests.helpers import CHANNEL_ID, follow_event, make_settings, new_user_id, signed_body
from workers.queue_metrics import RedisStateCollector

ROOT = Path(__file__).resolve().parents[3]


def sample(name: str, **labels: str) -> float:
    """The value summed over every process's files (0 when nothing was recorded)."""
    return multiprocess_registry().get_sample_value(name, labels) or 0.0


def _count_requests(times: int) -> None:
    for _ in range(times):
        get_metrics().webhook_request("test_forked")


def _run_a_task_and_die() -> None:
    get_metrics().task_started("test.dies_mid_task")
    get_metrics().webhook_request("test_dead_child")


def _run_a_task_until_released(started, release) -> None:
    get_metrics().task_started("test.still_running")
    started.set()
    release.wait(10)
    get_metrics().task_ended("test.still_running")


def run_forked(target, *args) -> multiprocessing.Process:
    child = multiprocessing.get_context("fork").Process(target=target, args=args)
    child.start()
    child.join(10)
    assert child.exitcode == 0
    return child


def test_counts_from_forked_children_are_summed():
    get_metrics()  # built in the parent, as gunicorn's master or Celery's main process would
    before = sample("linecap_webhook_requests_total", outcome="test_forked")
    run_forked(_count_requests, 3)
    run_forked(_count_requests, 4)
    assert sample("linecap_webhook_requests_total", outcome="test_forked") == before + 7


def test_a_dead_process_loses_its_live_gauge_but_not_its_counts():
    """Even a child killed without running its shutdown hook: the scrape notices."""
    run_forked(_run_a_task_and_die)
    assert sample("linecap_tasks_in_progress", task="test.dies_mid_task") == 0
    assert sample("linecap_webhook_requests_total", outcome="test_dead_child") == 1


def test_a_live_process_keeps_its_live_gauge():
    context = multiprocessing.get_context("fork")
    started, release = context.Event(), context.Event()
    child = context.Process(target=_run_a_task_until_released, args=(started, release))
    child.start()
    try:
        assert started.wait(10)
        assert sample("linecap_tasks_in_progress", task="test.still_running") == 1
    finally:
        release.set()
        child.join(10)
    assert child.exitcode == 0
    forget_process(child.pid)
    assert sample("linecap_tasks_in_progress", task="test.still_running") == 0


def write_counter(path: Path, value: float) -> None:
    values = MmapedDict(str(path))
    key = mmap_key("linecap_test_race", "linecap_test_race_total", [], [], "Race test.")
    values.write_value(key, value, 0.0)
    values.close()


def scrape_directory(directory: Path) -> float | None:
    registry = CollectorRegistry()
    registry.register(LiveProcessCollector(str(directory)))
    return registry.get_sample_value("linecap_test_race_total")


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_scrape_skips_a_file_another_process_is_still_creating(tmp_path):
    """prometheus_client creates a file empty, then sizes it: a scrape in between read the
    empty file and answered 500 (the worker /metrics failure of issue 13)."""
    write_counter(tmp_path / "counter_101.db", 2)
    (tmp_path / "counter_102.db").touch()  # opened by a new pool process, not yet sized
    assert scrape_directory(tmp_path) == 2


def test_live_gauge_files_removed_by_someone_else_first_are_not_an_error(tmp_path,
                                                                         monkeypatch):
    """A dead process's live-gauge file is removed by a scrape and by the parent's exit hook;
    whoever comes second finds it gone."""
    write_counter(tmp_path / "counter_101.db", 1)
    real_remove = os.remove

    def someone_else_got_there_first(path, *args, **kwargs):
        real_remove(path)
        raise FileNotFoundError(path)

    monkeypatch.setattr(os, "remove", someone_else_got_there_first)
    for _ in range(2):
        (tmp_path / f"gauge_livesum_{dead_pid()}.db").touch()
        assert scrape_directory(tmp_path) == 1
    monkeypatch.setenv(DIR_VAR, str(tmp_path))
    pid = dead_pid()
    (tmp_path / f"gauge_livesum_{pid}.db").touch()
    forget_process(pid)
    assert not list(tmp_path.glob("gauge_live*"))


def test_an_operators_directory_is_used_as_given(monkeypatch, tmp_path):
    wanted = tmp_path / "metrics"
    monkeypatch.setenv(DIR_VAR, str(wanted))
    monkeypatch.delenv(OWNER_VAR, raising=False)
    assert prepare_multiprocess_dir("web") == str(wanted)
    assert wanted.is_dir()


def test_a_directory_inherited_from_another_linecap_process_is_replaced(monkeypatch, tmp_path):
    monkeypatch.setenv(DIR_VAR, str(tmp_path))
    monkeypatch.setenv(OWNER_VAR, str(os.getpid() + 1))
    made = Path(prepare_multiprocess_dir("worker"))
    try:
        assert made != tmp_path and made.is_dir()
        assert made.name.startswith(f"linecap-worker-{os.getpid()}-")
        assert os.environ[DIR_VAR] == str(made) and os.environ[OWNER_VAR] == str(os.getpid())
    finally:
        made.rmdir()


def test_a_private_directory_is_removed_by_its_maker_only():
    script = (
        "import os, sys\n"
        "from core.metrics import prepare_multiprocess_dir\n"
        "path = prepare_multiprocess_dir('web')\n"
        "child = os.fork()\n"
        "if child == 0:\n"
        "    sys.exit(0)\n"
        "os.waitpid(child, 0)\n"
        "print(path, os.path.isdir(path))\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in (DIR_VAR, OWNER_VAR)}
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=30, check=True)
    path, alive_after_child_exit = result.stdout.split()
    assert alive_after_child_exit == "True"
    assert not Path(path).exists()


def test_redis_state_is_read_at_scrape_time():
    client = fakeredis.FakeRedis(decode_responses=True)
    client.rpush("line-events", "a", "b")
    client.rpush("line-events\x06\x166", "prioritised")
    client.rpush("imports", "x")
    now = time.time()
    # The third is older than the dead letters' retention: its entry has expired.
    client.zadd(DEAD_LETTER_INDEX, {"event-1": now - 1, "event-2": now,
                                    "event-3": now - 31 * 24 * 3600})
    registry = CollectorRegistry()
    registry.register(RedisStateCollector(client))
    assert registry.get_sample_value("linecap_redis_up") == 1
    assert registry.get_sample_value("linecap_queue_depth", {"queue": "line-events"}) == 3
    assert registry.get_sample_value("linecap_queue_depth", {"queue": "linking"}) == 0
    assert registry.get_sample_value("linecap_queue_depth", {"queue": "imports"}) == 1
    assert registry.get_sample_value("linecap_dead_letters") == 2
    assert registry.get_sample_value("linecap_messages_unacked") == 0
    client.hset("unacked", "tag-1", "message")
    assert registry.get_sample_value("linecap_messages_unacked") == 1
    assert registry.get_sample_value("linecap_jobs_waiting") == 0
    DelayedJobs(client).defer(DelayedJob("linecap.process_event", "E9", {}), 60)
    assert registry.get_sample_value("linecap_jobs_waiting") == 1
    client.lpop("line-events")
    assert registry.get_sample_value("linecap_queue_depth", {"queue": "line-events"}) == 2


def test_each_rate_budget_shows_its_use_and_limit(fake_redis):
    from core.store.rate_budget import SharedRateLimiter

    limiter = SharedRateLimiter(fake_redis, 100, group_limits={"add": 5}, max_inline_wait=0)
    for group in ("add", "add", "lookup"):
        limiter.acquire(group)
    registry = CollectorRegistry()
    registry.register(RedisStateCollector(fake_redis, budgets=limiter.budgets()))
    assert registry.get_sample_value("linecap_rate_budget_used", {"budget": "add"}) == 2
    assert registry.get_sample_value("linecap_rate_budget_used", {"budget": "shared"}) == 1
    assert registry.get_sample_value("linecap_rate_budget_limit", {"budget": "add"}) == 5
    assert registry.get_sample_value("linecap_rate_budget_limit", {"budget": "shared"}) == 100


def test_redis_down_is_reported_not_raised():
    client = redis.Redis(port=free_port(), socket_connect_timeout=0.2,
                         retry=Retry(NoBackoff(), 0))
    registry = CollectorRegistry()
    registry.register(RedisStateCollector(client))
    assert registry.get_sample_value("linecap_redis_up") == 0
    assert registry.get_sample_value("linecap_queue_depth", {"queue": "line-events"}) is None


class NullPublisher:
    def publish(self, channel_id, batch) -> None:
        pass


METRICS_KEY = "metrics-key-0123456789abcdef"


def web_sample(client, name: str, **labels: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    response = client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_KEY}"})
    assert response.status_code == 200
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return s.value
    return 0.0


def test_web_metrics_count_webhook_outcomes_including_too_large():
    settings = dataclasses.replace(make_settings(LINECAP_METRICS_KEYS=METRICS_KEY),
                                   webhook_max_body_bytes=2048)
    redis_client = fakeredis.FakeRedis(decode_responses=True)
    redis_client.rpush("linking", "waiting")
    client = create_app(settings, publisher=NullPublisher(), redis_client=redis_client,
                        celery_app=object()).test_client()
    name = "linecap_webhook_requests_total"
    before = {o: web_sample(client, name, outcome=o)
              for o in ("accepted", "bad_signature", "too_large", "malformed")}
    path = f"/webhooks/line/{CHANNEL_ID}"
    body, headers = signed_body([follow_event(new_user_id())])
    assert client.post(path, data=body, headers=headers).status_code == 200
    body, headers = signed_body([follow_event(new_user_id())], secret="wrong-secret")
    assert client.post(path, data=body, headers=headers).status_code == 401
    body, headers = signed_body([follow_event(new_user_id()) for _ in range(20)])
    assert client.post(path, data=body, headers=headers).status_code == 413
    assert web_sample(client, name, outcome="accepted") == before["accepted"] + 1
    assert web_sample(client, name, outcome="bad_signature") == before["bad_signature"] + 1
    assert web_sample(client, name, outcome="too_large") == before["too_large"] + 1
    assert web_sample(client, name, outcome="malformed") == before["malformed"]
    assert web_sample(client, "linecap_queue_depth", queue="linking") == 1
