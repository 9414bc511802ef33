"""Idle consumers wait for a wake-up, not a poll interval: the wait, and what ends it (no Redis needed)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from dramatiq import Message
from dramatiq.broker import Consumer, MessageProxy
from dramatiq.common import current_millis

from gateway.broker import QueueWakes, WaitingConsumer, idle_wait_seconds

#: Long enough that a test waiting for it would time out first: what ends a wait here is a wake-up.
FOREVER_MS = 600_000


class Inner(Consumer):  # type: ignore[misc]
    """Hands out the messages it is given, then finds nothing; records acks."""

    def __init__(self, messages: list[MessageProxy] | None = None) -> None:
        self.messages = list(messages or [])
        self.acked: list[str] = []

    def ack(self, message: MessageProxy) -> None:
        self.acked.append(message.message_id)

    def nack(self, message: MessageProxy) -> None:
        self.acked.append(message.message_id)

    def __next__(self) -> MessageProxy | None:
        return self.messages.pop(0) if self.messages else None


def proxy(**options: Any) -> MessageProxy:
    return MessageProxy(Message(queue_name="q", actor_name="a", args=(), kwargs={}, options=options))


def consumer(inner: Inner, *, prefetch: int = 10, stopping: threading.Event | None = None,
             woken: threading.Event | None = None) -> WaitingConsumer:
    return WaitingConsumer(inner, woken or threading.Event(), prefetch=prefetch,
                           stopping=stopping or threading.Event(), idle_poll_ms=FOREVER_MS, stop_poll_ms=1)


def next_in_thread(waiting: WaitingConsumer) -> tuple[threading.Thread, list[Any]]:
    got: list[Any] = []
    thread = threading.Thread(target=lambda: got.append(next(waiting)), daemon=True)
    thread.start()
    return thread, got


@pytest.mark.parametrize(("now", "due", "expected"), [
    (1_000, None, 2.0),  # nothing delayed: the idle poll
    (1_000, 1_300, 0.301),  # a delayed message due sooner: just after it is due
    (1_000, 900, 0.0),  # already due: no wait
    (1_000, 9_000, 2.0),  # due after the idle poll: the idle poll
])
def test_an_idle_consumer_waits_for_its_poll_or_its_next_delayed_message(now: int, due: int | None,
                                                                           expected: float) -> None:
    assert idle_wait_seconds(now, due, 2_000) == pytest.approx(expected)


def test_a_message_is_handed_out_without_waiting() -> None:
    message = proxy()
    assert next(consumer(Inner([message]))) is message


def test_an_idle_consumer_waits_until_woken() -> None:
    woken = threading.Event()
    thread, got = next_in_thread(consumer(Inner(), woken=woken))
    thread.join(0.2)
    assert thread.is_alive()  # nothing to fetch: it waits (for ten minutes, unless woken)
    woken.set()
    thread.join(5)
    assert not thread.is_alive() and got == [None]


def test_a_consumer_holding_a_due_delayed_message_does_not_wait_past_it() -> None:
    waiting = consumer(Inner([proxy(eta=current_millis() - 1)]))
    assert next(waiting) is not None  # Dramatiq holds it until its eta: the consumer must come back by then
    thread, got = next_in_thread(waiting)
    thread.join(5)
    assert not thread.is_alive() and got == [None]


def test_an_ack_wakes_the_consumer_only_when_it_held_all_it_may() -> None:
    woken = threading.Event()
    waiting = consumer(Inner([proxy(), proxy()]), prefetch=2, woken=woken)
    first, second = next(waiting), next(waiting)
    waiting.ack(first)  # it held two of two: a slot is free, look again
    assert woken.is_set()
    woken.clear()
    waiting.ack(second)  # it held one of two: nothing waited for this slot
    assert not woken.is_set()


def test_a_stopping_consumer_looks_again_without_waiting_for_a_wake_up() -> None:
    stopping = threading.Event()
    stopping.set()
    thread, got = next_in_thread(consumer(Inner(), stopping=stopping))
    thread.join(5)
    assert not thread.is_alive() and got == [None]


class Unreachable:
    def publish(self, name: str) -> None:
        raise ConnectionError("Redis is gone")

    def subscribe(self, listener: Any) -> None:
        pass

    def close(self) -> None:
        pass


def test_a_wake_up_that_cannot_be_sent_is_logged_and_the_enqueue_stands(caplog: pytest.LogCaptureFixture) -> None:
    from dramatiq.brokers.stub import StubBroker

    broker = StubBroker()
    broker.add_middleware(QueueWakes(Unreachable()))  # type: ignore[arg-type]
    broker.declare_queue("q")
    broker.enqueue(Message(queue_name="q", actor_name="a", args=(), kwargs={}, options={}))
    assert broker.queues["q"].qsize() == 1
    assert "could not wake the consumers of queue q (ConnectionError: Redis is gone)" in caplog.text
    broker.close()
