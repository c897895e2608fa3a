"""The receiver's publisher: one message per event, and a fast 503 during a broker outage."""

from __future__ import annotations

from contextlib import contextmanager

import pytest
from kombu.exceptions import OperationalError

from app.publisher import BrokerUnavailable, CeleryEventPublisher


class BatchingProducer:
    """kombu's Producer.batch() contract: flushed on a clean exit, discarded on an error."""

    def __init__(self) -> None:
        self.pending: list[str] = []
        self.flushed: list[list[str]] = []
        self.discarded: list[list[str]] = []
        self.in_batch = False

    @contextmanager
    def batch(self):
        self.in_batch = True
        try:
            yield
        except BaseException:
            self.discarded.append(self.pending)
            raise
        else:
            self.flushed.append(self.pending)
        finally:
            self.pending, self.in_batch = [], False


class FlakyCelery:
    def __init__(self) -> None:
        self.down = False
        self.fail_at: str | None = None
        self.calls: list[str] = []
        self.reprs: list[str] = []
        self.producer = BatchingProducer()

    @contextmanager
    def producer_or_acquire(self):
        yield self.producer

    def send_task(self, name, kwargs, task_id, queue, retry, kwargsrepr, producer, declare):
        assert producer is self.producer and producer.in_batch, "published outside a batch"
        self.calls.append(task_id)
        self.reprs.append(kwargsrepr)
        if self.down or task_id == self.fail_at:
            raise OperationalError("Error 111 connecting")
        producer.pending.append(task_id)


class Probe:
    def __init__(self) -> None:
        self.up = True
        self.calls = 0

    def __call__(self):
        self.calls += 1
        if not self.up:
            raise ConnectionError("refused")
        return True


def test_each_event_is_one_message_with_its_event_id_as_task_id():
    celery = FlakyCelery()
    CeleryEventPublisher(celery).publish("c", [{"webhookEventId": "A", "type": "follow"},
                                               {"webhookEventId": "B", "type": "unfollow"}])
    assert celery.calls == ["A", "B"]
    assert celery.reprs == ["follow A channel c", "unfollow B channel c"]


def test_a_request_is_one_batch_and_a_failure_in_it_publishes_none_of_it():
    celery = FlakyCelery()
    publisher = CeleryEventPublisher(celery)
    publisher.publish("c", [{"webhookEventId": "A"}, {"webhookEventId": "B"}])
    celery.fail_at = "D"
    with pytest.raises(BrokerUnavailable):
        publisher.publish("c", [{"webhookEventId": "C"}, {"webhookEventId": "D"},
                                {"webhookEventId": "E"}])
    assert celery.producer.flushed == [["A", "B"]]
    assert celery.producer.discarded == [["C"]], "LINE redelivers C, D and E together"


def test_after_a_failure_the_probe_answers_instead_of_the_slow_publish():
    celery, probe = FlakyCelery(), Probe()
    publisher = CeleryEventPublisher(celery, probe=probe)
    publisher.publish("c", [{"webhookEventId": "A"}])
    assert probe.calls == 0, "no probe on the healthy path"
    celery.down, probe.up = True, False
    with pytest.raises(BrokerUnavailable):
        publisher.publish("c", [{"webhookEventId": "B"}])
    with pytest.raises(BrokerUnavailable):
        publisher.publish("c", [{"webhookEventId": "C"}])
    assert celery.calls == ["A", "B"], "while the probe fails nothing is published"
    celery.down, probe.up = False, True
    publisher.publish("c", [{"webhookEventId": "D"}])
    publisher.publish("c", [{"webhookEventId": "E"}])
    assert celery.calls == ["A", "B", "D", "E"]
    assert probe.calls == 2, "the circuit closes after the first good probe"
