"""Metrics and logs from the real processes: gunicorn's two workers summed, the Celery worker's
own endpoint agreeing with what reached the Capillary sandbox, and JSON log lines that carry
the event's ids and no secrets.

The system gets a Redis database of its own, so no other test's worker takes its events and
the queue depth it reads is its own.
"""

from __future__ import annotations

import json
import re
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from prometheus_client.parser import text_string_to_metric_families

from cli.localstack.ports import free_port
from core.store.connection import redis_client
from core.store.dead_letters import INDEX as DEAD_LETTER_INDEX
from tests.helpers import ACCESS_TOKEN, CHANNEL_ID, CHANNEL_SECRET, follow_event, new_user_id
from tests.integration.stack import SANDBOX_PASSWORD, Proc, Stack, database_url, wait_until
from workers.registry import EVENTS_QUEUE

OWN_DB = 12
TASK_LOGGERS = ("linecap.tasks", "linecap.apply", "linecap.customers")


METRICS_KEY = "metrics-key-for-tests-0123456789"


def scrape(url: str) -> dict[tuple[str, frozenset], float]:
    """Prometheus's scrape, with the bearer key (the worker's own endpoint ignores it)."""
    response = requests.get(url, timeout=5, headers={"Authorization": f"Bearer {METRICS_KEY}"})
    assert response.status_code == 200, response.text
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(response.text)
            for sample in family.samples}


def value(samples: dict, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def matching(samples: dict, name: str, **labels: str) -> dict[frozenset, float]:
    """Every sample of `name` whose labels include `labels`."""
    wanted = set(labels.items())
    return {key: v for (n, key), v in samples.items() if n == name and wanted <= key}


def metrics_dir(service: str, proc: Proc) -> Path:
    """The private directory the service's parent process made (named after its pid)."""
    found = list(Path(tempfile.gettempdir()).glob(f"linecap-{service}-{proc.popen.pid}-*"))
    assert len(found) == 1, found
    return found[0]


def counter_pids(directory: Path) -> set[str]:
    return {path.stem.rsplit("_", 1)[1] for path in directory.glob("counter_*.db")}


def send_until_both_workers_served(stack: Stack, web_dir: Path, timeout: float = 30) -> int:
    """Empty batches (LINE's "verify" call) in parallel bursts until two pids have counted.

    The second gunicorn worker may still be booting when the first answers /healthz.
    """
    accepted = 0
    deadline = time.monotonic() + timeout
    with ThreadPoolExecutor(8) as pool:
        while len(counter_pids(web_dir)) < 2:
            assert time.monotonic() < deadline, f"only {counter_pids(web_dir)} served"
            statuses = list(pool.map(lambda _: stack.send([]).status_code, range(8)))
            assert set(statuses) == {200}, statuses
            accepted += len(statuses)
            time.sleep(0.1)
    return accepted


def endpoint_of(call: dict) -> str:
    return f"{call['method']} " + re.sub(r"/\d+(?=/|$)", "/{id}", call["path"])


def json_lines(log: str) -> list[dict]:
    """Every line from the first JSON one on (Celery prints its banner before logging starts)."""
    lines = log.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("{"))
    records = [json.loads(line) for line in lines[start:]]
    assert all(isinstance(record, dict) for record in records)
    return records


def test_metrics_and_logs_of_a_running_system(fresh_stack, redis_url):
    url = database_url(redis_url, OWN_DB)
    redis = redis_client(url)
    redis.flushdb()
    stack = fresh_stack(REDIS_URL=url, LINECAP_METRICS_KEYS=METRICS_KEY)
    web = stack.start_web()
    assert requests.get(stack.web_url + "/metrics", timeout=5).status_code == 401

    # The web alone: events wait in the queue, requests are counted by both gunicorn workers.
    events = [follow_event(new_user_id()) for _ in range(3)]
    for event in events:
        assert stack.send([event]).status_code == 200
    assert stack.send([follow_event(new_user_id())], secret="not-the-secret").status_code == 401
    web_dir = metrics_dir("web", web)
    accepted = len(events) + send_until_both_workers_served(stack, web_dir)

    web_metrics = stack.web_url + "/metrics"
    for _ in range(4):  # any worker answering the scrape reports the same totals
        web_samples = scrape(web_metrics)
        assert value(web_samples, "linecap_webhook_requests_total", outcome="accepted") == accepted
        assert value(web_samples, "linecap_webhook_requests_total", outcome="bad_signature") == 1
    assert value(web_samples, "linecap_events_received_total", type="follow", channel=CHANNEL_ID,
                 enqueued="true") == len(events)
    assert value(web_samples, "linecap_redis_up") == 1
    assert value(web_samples, "linecap_queue_depth", queue=EVENTS_QUEUE) == len(events)
    assert value(web_samples, "linecap_queue_depth", queue="linking") == 0
    assert value(web_samples, "linecap_dead_letters") == redis.zcard(DEAD_LETTER_INDEX) == 0

    # The worker: its own endpoint, summing its pool children.
    port = free_port()
    worker = stack.start_worker(extra_env={"LINECAP_WORKER_METRICS_PORT": str(port)})
    worker_metrics = f"http://127.0.0.1:{port}/metrics"

    def all_applied() -> bool:
        samples = scrape(worker_metrics)
        return value(samples, "linecap_events_finished_total", outcome="applied",
                     type="follow", channel=CHANNEL_ID) == len(events)

    wait_until(all_applied, 30, 0.2, "three events applied, per the worker metrics")
    samples = scrape(worker_metrics)
    assert value(samples, "linecap_tasks_in_progress", task="linecap.process_event") == 0

    reached_sandbox = Counter((endpoint_of(c), str(c["status"])) for c in stack.calls())
    counted = {(dict(key)["endpoint"], dict(key)["status"]): v
               for key, v in matching(samples, "linecap_capillary_requests_total").items()}
    assert counted == reached_sandbox
    for endpoint in {e for e, _ in reached_sandbox}:
        calls = sum(n for (e, _), n in reached_sandbox.items() if e == endpoint)
        buckets = sorted(matching(samples, "linecap_capillary_request_duration_seconds_bucket",
                                  endpoint=endpoint).items(),
                         key=lambda item: float(dict(item[0])["le"]))
        assert [float(dict(key)["le"]) for key, _ in buckets][-1] == float("inf")
        counts = [v for _, v in buckets]
        assert counts == sorted(counts) and counts[-1] == calls, (endpoint, buckets)
        assert value(samples, "linecap_capillary_request_duration_seconds_count",
                     endpoint=endpoint) == calls
        assert value(samples, "linecap_capillary_request_duration_seconds_sum",
                     endpoint=endpoint) > 0
    assert ("POST /v2/customers", "200") in counted

    def drained() -> bool:
        samples = scrape(web_metrics)
        return (value(samples, "linecap_queue_depth", queue=EVENTS_QUEUE) == 0
                and value(samples, "linecap_messages_unacked") == 0)

    wait_until(drained, 10, 0.2, "queue drained and every message acknowledged")

    # The worker's log: JSON lines, each task line with the event's ids, no secrets.
    records = json_lines(worker.log())
    for event in events:
        event_id = event["webhookEventId"]
        lines = [r for r in records if r.get("webhook_event_id") == event_id]
        assert any(r["msg"] == "event applied" for r in lines), lines
        for record in lines:
            assert record["channel"] == CHANNEL_ID and record["task_id"] == event_id, record
    task_lines = [r for r in records if r["logger"] in TASK_LOGGERS]
    assert task_lines and all({"webhook_event_id", "channel", "task_id"} <= set(r)
                              for r in task_lines)
    for log in (worker.log(), web.log()):
        for secret in (CHANNEL_SECRET, ACCESS_TOKEN, SANDBOX_PASSWORD):
            assert secret not in log

    # Stopping a service removes its private metrics directory.
    web.stop()
    worker.stop()
    assert not web_dir.exists()
    assert list(Path(tempfile.gettempdir()).glob(f"linecap-worker-{worker.popen.pid}-*")) == []
