"""The receiver's publisher: one message per event, and a fast 503 during a broker outage."""

from __future__ import annotations

from contextlib import contextmanager

import pytest
from kombu.exceptions import OperationalError

from app.publisher import BrokerUnavailable, CeleryEventPublisher


class FlakyCelery:
    def __init__(self) -> None:
        self.down = False
        self.calls: list[str] = []
        self.reprs: list[str] = []

    @contextmanager
    def producer_or_acquire(self):
        yield "producer"

    def send_task(self, name, kwargs, task_id, queue, retry, kwargsrepr, producer):
        assert producer == "producer"
        self.calls.append(task_id)
        self.reprs.append(kwargsrepr)
        if self.down:
            raise OperationalError("Error 111 connecting")


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
