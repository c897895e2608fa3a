"""linecap's Prometheus metrics, correct across gunicorn workers and Celery pool children.

prometheus_client's multiprocess mode keeps each process's numbers in files under
PROMETHEUS_MULTIPROC_DIR and sums them at scrape time. The directory must be set before any
metric object exists and be shared by every process of one service, so the process that forks
the others (gunicorn master, Celery main process) prepares it, and the metric objects are only
built on first use, through `get_metrics()`.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import shutil
import tempfile
import threading
from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, values
from prometheus_client.core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from core.line import events

DIR_VAR = "PROMETHEUS_MULTIPROC_DIR"
OWNER_VAR = "LINECAP_METRICS_DIR_OWNER"  # pid of the linecap process that made a private dir
LINE_EVENT_TYPES = frozenset({
    "message", "unsend", "follow", "unfollow", "join", "leave", "memberJoined", "memberLeft",
    "postback", "videoPlayComplete", "beacon", "accountLink", "things", "membership", "module",
    "activated", "deactivated", "botSuspended", "botResumed",
})
CAPILLARY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
WAIT_BUCKETS = (0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)


def prepare_multiprocess_dir(service: str) -> str:
    """Choose the directory for a service, in the process that will fork its workers.

    An operator's PROMETHEUS_MULTIPROC_DIR is used as given. A private directory inherited from
    another linecap process (a test runner, a launcher) is not ours: we make a fresh one, or
    the web and the worker would report each other's numbers.
    """
    current, owner = os.environ.get(DIR_VAR), os.environ.get(OWNER_VAR)
    if current and owner in (None, str(os.getpid())):
        os.makedirs(current, exist_ok=True)
    else:
        current = _private_dir(service)
    _use_multiprocess_values()
    return current


def ensure_multiprocess_dir() -> str:
    """The directory in use; a process that nobody prepared (flask run, a test) makes its own."""
    current = os.environ.get(DIR_VAR) or _private_dir("process")
    _use_multiprocess_values()
    return current


def forget_process(pid: int) -> None:
    """Drop a dead process's live gauges (its counters stay: totals must not go down)."""
    if os.environ.get(DIR_VAR):
        _remove_live_files(os.environ[DIR_VAR], pid)


def _remove_live_files(directory: str, pid: int) -> None:
    """prometheus_client's mark_process_dead, except that a file another remover (a
    concurrent scrape, the parent's exit hook) deleted first is not an error."""
    for path in glob.glob(os.path.join(directory, f"gauge_live*_{pid}.db")):
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)


def _private_dir(service: str) -> str:
    path = tempfile.mkdtemp(prefix=f"linecap-{service}-{os.getpid()}-metrics-")
    os.environ[DIR_VAR] = path
    os.environ[OWNER_VAR] = str(os.getpid())
    atexit.register(_remove_if_owner, path, os.getpid())
    return path


def _remove_if_owner(path: str, owner_pid: int) -> None:
    """Forked children inherit atexit handlers; only the process that made the dir removes it."""
    if os.getpid() == owner_pid:
        shutil.rmtree(path, ignore_errors=True)


def _use_multiprocess_values() -> None:
    """prometheus_client picks its value class when first imported, which may predate the dir."""
    if not getattr(values.ValueClass, "_multiprocess", False):
        values.ValueClass = values.get_value_class()


def event_type_label(event: dict[str, Any]) -> str:
    """A LINE event type, or "other": label values must come from a small, known set."""
    kind = events.event_type(event)
    return kind if kind in LINE_EVENT_TYPES else "other"


class Metrics:
    """Every metric linecap records; build it through get_metrics(), once per process tree."""

    def __init__(self) -> None:
        self._webhook_requests = Counter(
            "linecap_webhook_requests", "Webhook requests answered, by outcome.",
            ["outcome"], registry=None)
        self._events_received = Counter(
            "linecap_events_received", "Events in verified webhook requests.",
            ["type", "channel", "enqueued"], registry=None)
        self._events_finished = Counter(
            "linecap_events_finished", "Event task runs that ended, by outcome.",
            ["outcome", "type", "channel"], registry=None)
        self._capillary_requests = Counter(
            "linecap_capillary_requests", "Capillary HTTP calls, by endpoint and status.",
            ["endpoint", "status"], registry=None)
        self._capillary_seconds = Histogram(
            "linecap_capillary_request_duration_seconds", "Capillary HTTP call latency.",
            ["endpoint"], buckets=CAPILLARY_BUCKETS, registry=None)
        self._rate_limit_wait_seconds = Histogram(
            "linecap_rate_limit_wait_seconds",
            "Waits for the shared Capillary budget (the _count is how many calls waited).",
            buckets=WAIT_BUCKETS, registry=None)
        self._tasks_in_progress = Gauge(
            "linecap_tasks_in_progress", "Tasks running now in the live pool processes.",
            ["task"], multiprocess_mode="livesum", registry=None)

    def webhook_request(self, outcome: str) -> None:
        self._webhook_requests.labels(outcome).inc()

    def events_received(self, channel_id: str,
                        received: list[tuple[dict[str, Any], bool]]) -> None:
        """Every event of an accepted request, with whether it was enqueued (a type linecap
        does not handle, or a handled one with bad fields, is not)."""
        for event, enqueued in received:
            self._events_received.labels(event_type_label(event), channel_id,
                                         "true" if enqueued else "false").inc()

    def event_finished(self, outcome: str, event: dict[str, Any], channel_id: str) -> None:
        self._events_finished.labels(outcome, event_type_label(event), channel_id).inc()

    def capillary_call(self, endpoint: str, status: str, seconds: float) -> None:
        """Matches CapillaryTransport's `observe` callback."""
        self._capillary_requests.labels(endpoint, status).inc()
        self._capillary_seconds.labels(endpoint).observe(seconds)

    def rate_limit_wait(self, seconds: float) -> None:
        """Matches SharedRateLimiter's `on_wait` callback."""
        self._rate_limit_wait_seconds.observe(seconds)

    def task_started(self, task_name: str) -> None:
        self._tasks_in_progress.labels(task_name).inc()

    def task_ended(self, task_name: str) -> None:
        self._tasks_in_progress.labels(task_name).dec()


_metrics: Metrics | None = None
_metrics_lock = threading.Lock()


def get_metrics() -> Metrics:
    """The process's Metrics, built on first use (two objects would overwrite each other's
    numbers in the shared files)."""
    global _metrics
    with _metrics_lock:
        if _metrics is None:
            ensure_multiprocess_dir()
            _metrics = Metrics()
    return _metrics


def multiprocess_registry(*collectors: Collector) -> CollectorRegistry:
    """A registry that sums every process's files, plus any scrape-time collectors."""
    registry = CollectorRegistry()
    registry.register(LiveProcessCollector(ensure_multiprocess_dir()))
    for collector in collectors:
        registry.register(collector)
    return registry


class LiveProcessCollector(MultiProcessCollector):
    """Sums every process's files, first dropping the live gauges of processes that died
    without a word (a SIGKILLed pool child never runs its shutdown hook).

    A scrape runs while other processes create, write and remove their files. A file another
    process has just created is empty until it sizes it (prometheus_client opens, then
    truncates to 64 KiB): reading it then fails, so it is left out of this scrape (it holds no
    value yet). A live-gauge file removed under us is skipped, by us and by prometheus_client.
    """

    def __init__(self, path: str) -> None:
        super().__init__(None, path=path)
        self._directory = path

    def collect(self) -> Iterable[Metric]:
        for path in glob.glob(os.path.join(self._directory, "gauge_live*_*.db")):
            pid = int(path[:-len(".db")].rsplit("_", 1)[1])
            if not _alive(pid):
                _remove_live_files(self._directory, pid)
        files = [path for path in glob.glob(os.path.join(self._directory, "*.db"))
                 if _sized(path)]
        return self.merge(files, accumulate=True)


def _sized(path: str) -> bool:
    """Past its creation: at least the 8-byte header (files only ever grow)."""
    try:
        return os.path.getsize(path) >= 8
    except FileNotFoundError:
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, under another user
    return True
