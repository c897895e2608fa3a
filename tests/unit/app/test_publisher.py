"""The receiver's publisher: one message per request, and a fast 503 during a broker outage;
the fan-out task that turns a multi-event request into one message per event."""

from __future__ import annotations

from contextlib import contextmanager

import pytest
from kombu.exceptions import OperationalError

from app.publisher import BrokerUnavailable, CeleryEventPublisher
from core.store.dead_letters import DeadLetterStore
from tasks.events import fan_out
from tests.helpers import CHANNEL_ID, follow_event, new_user_id
from workers.messages import send_events
from workers.outcomes import Outcome
from workers.registry import EVENT_BATCHES_QUEUE, EVENTS_QUEUE, FAN_OUT_TASK, PROCESS_EVENT_TASK


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
        self.sent: list[tuple[str, str, dict]] = []
        self.producer = BatchingProducer()

    @contextmanager
    def producer_or_acquire(self):
        yield self.producer

    def send_task(self, name, kwargs, task_id, queue, retry, kwargsrepr, producer, declare):
        assert producer is self.producer and producer.in_batch, "published outside a batch"
        self.calls.append(task_id)
        self.reprs.append(kwargsrepr)
        self.sent.append((name, queue, kwargs))
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


def test_a_single_event_is_one_message_with_its_event_id_as_task_id():
    celery = FlakyCelery()
    CeleryEventPublisher(celery).publish("c", [{"webhookEventId": "A", "type": "follow"}])
    assert celery.sent == [(PROCESS_EVENT_TASK, EVENTS_QUEUE,
                            {"channel_id": "c", "event": {"webhookEventId": "A",
                                                          "type": "follow"}})]
    assert celery.calls == ["A"] and celery.reprs == ["follow A channel c"]
    assert celery.producer.flushed == [["A"]], "the message and its task-sent event: one trip"


def test_several_events_are_one_fan_out_message_in_their_order():
    celery = FlakyCelery()
    batch = [{"webhookEventId": "A", "type": "follow"}, {"webhookEventId": "B"},
             {"webhookEventId": "C", "type": "unfollow"}]
    CeleryEventPublisher(celery).publish("c", batch)
    assert celery.sent == [(FAN_OUT_TASK, EVENT_BATCHES_QUEUE,
                            {"channel_id": "c", "events": batch})]
    assert celery.reprs == ["3 events A..C channel c"]
    assert celery.producer.flushed == [["batch-A-3"]]


def test_a_request_with_nothing_to_enqueue_publishes_nothing():
    celery = FlakyCelery()
    CeleryEventPublisher(celery).publish("c", [])
    assert celery.calls == [] and celery.producer.flushed == []


def test_a_broker_error_is_a_503_for_the_whole_request():
    celery = FlakyCelery()
    celery.fail_at = "batch-C-2"
    with pytest.raises(BrokerUnavailable) as info:
        CeleryEventPublisher(celery).publish("c", [{"webhookEventId": "C"},
                                                   {"webhookEventId": "D"}])
    assert "Error 111" not in str(info.value), "only the error's class reaches the log"
    assert celery.producer.discarded == [[]]


def test_fanned_out_events_are_one_batch_and_a_failure_in_it_publishes_none_of_it():
    celery = FlakyCelery()
    send_events(celery, "c", [{"webhookEventId": "A"}, {"webhookEventId": "B"}])
    celery.fail_at = "D"
    with pytest.raises(OperationalError):
        send_events(celery, "c", [{"webhookEventId": "C"}, {"webhookEventId": "D"},
                                  {"webhookEventId": "E"}])
    assert celery.producer.flushed == [["A", "B"]]
    assert celery.producer.discarded == [["C"]], "the fan-out is requeued and sends all three"
    assert [name for name, _, _ in celery.sent] == [PROCESS_EVENT_TASK] * 4


def test_fan_out_task_sends_each_event_under_its_own_id(monkeypatch):
    sent = []
    monkeypatch.setattr(fan_out, "send_events",
                        lambda app, channel, batch: sent.append((channel, batch)))
    batch = [follow_event(new_user_id()), follow_event(new_user_id())]
    assert fan_out.fan_out(None, CHANNEL_ID, batch) == Outcome.FANNED_OUT
    assert sent == [(CHANNEL_ID, batch)]


def test_fan_out_during_a_broker_outage_is_requeued_not_failed(monkeypatch):
    from celery.exceptions import Reject

    def refuse(app, channel, batch):
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379")

    monkeypatch.setattr(fan_out, "send_events", refuse)
    monkeypatch.setattr(fan_out, "BROKER_PAUSE_SECONDS", 0)
    with pytest.raises(Reject) as info:
        fan_out.fan_out(None, CHANNEL_ID, [follow_event(new_user_id())])
    assert info.value.requeue is True, "a failed task would be acked and its events lost"


def test_fan_out_that_fails_for_another_reason_dead_letters_every_event(monkeypatch,
                                                                        fake_redis):
    from types import SimpleNamespace

    def broken(app, channel, batch):
        raise TypeError("not serialisable")

    letters = DeadLetterStore(fake_redis)
    monkeypatch.setattr(fan_out, "send_events", broken)
    runtime = SimpleNamespace(dead_letters=letters)
    batch = [follow_event(new_user_id()), follow_event(new_user_id())]
    assert fan_out.fan_out(runtime, CHANNEL_ID, batch) == "dead_lettered"
    for event in batch:
        letter = letters.get(event["webhookEventId"])
        assert letter.task == PROCESS_EVENT_TASK, "a replay goes straight to the event task"
        assert letter.event == event and letter.error_class == "unexpected"
        assert "TypeError" in letter.error


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
