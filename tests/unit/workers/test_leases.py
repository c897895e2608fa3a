"""A live worker renews the visibility of the messages it holds: only those still unacked, so a
message acknowledged or already handed back is never brought back to life."""

from __future__ import annotations

from contextlib import contextmanager
from types import SimpleNamespace

import fakeredis
import pytest
from celery.worker import state

from tests.helpers import make_settings
from workers.celery_app import make_celery
from workers.leases import MessageLeases, held_delivery_tags, renew, renewal_interval


class Channel:
    """The two things of kombu's Redis channel the renewal uses."""

    unacked_index_key = "unacked_index"

    def __init__(self, client) -> None:
        self.client = client

    @contextmanager
    def conn_or_acquire(self):
        yield self.client


class Request:
    """What the worker's state holds per message (weak-referenceable, like Celery's)."""

    def __init__(self, tag: str) -> None:
        self.message = SimpleNamespace(delivery_tag=tag)


@pytest.fixture
def held():
    """Requests the worker's state holds for the test, removed afterwards."""
    added: list[tuple[object, Request]] = []

    def add(collection, tag: str) -> Request:
        item = Request(tag)
        collection.add(item)
        added.append((collection, item))
        return item

    yield add
    for collection, item in added:
        collection.discard(item)


def test_held_messages_are_marked_taken_now_and_no_others(held):
    client = fakeredis.FakeRedis(decode_responses=True)
    client.zadd("unacked_index", {"running": 100.0, "waiting-for-a-process": 100.0,
                                  "another-workers": 100.0})
    keep = [held(state.active_requests, "running"),
            held(state.reserved_requests, "waiting-for-a-process"),
            held(state.reserved_requests, "acknowledged-meanwhile")]
    tags = held_delivery_tags()
    assert {"running", "waiting-for-a-process", "acknowledged-meanwhile"} <= set(tags)
    assert renew(Channel(client), tags, now=5000.0) == 2
    assert client.zscore("unacked_index", "running") == 5000.0
    assert client.zscore("unacked_index", "waiting-for-a-process") == 5000.0
    assert client.zscore("unacked_index", "another-workers") == 100.0
    assert client.zscore("unacked_index", "acknowledged-meanwhile") is None, \
        "an acknowledged message must not come back"
    assert keep  # held until here


def test_leases_are_renewed_several_times_per_visibility_timeout():
    assert renewal_interval(30) == 10
    assert renewal_interval(2) == 1


def test_every_worker_renews_its_messages_and_kombu_sweeps_every_10_s():
    app = make_celery(make_settings())
    try:
        assert MessageLeases in app.steps["consumer"]
        options = app.conf.broker_transport_options
        assert options["visibility_timeout"] == 30  # the shipped default
        assert options["unacked_restore_interval"] == 10
        assert options["unacked_mutex_expire"] <= 10
        assert app.conf.task_soft_time_limit == 300
        assert app.conf.task_time_limit > app.conf.task_soft_time_limit
    finally:
        app.close()


def test_a_run_killed_at_the_hard_time_limit_is_requeued_not_acknowledged():
    app = make_celery(make_settings())
    try:
        app.loader.import_default_modules()
        task = app.tasks["linecap.process_event"]
        assert task.acks_late and task.acks_on_timeout is False
        assert task.reject_on_worker_lost
    finally:
        app.close()
