"""Idle consumers wait for a wake-up, not a poll interval: the wait, what ends it, and who is woken
(no Redis needed)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from dramatiq import Message
from dramatiq.broker import Consumer, MessageProxy
from dramatiq.brokers.stub import StubBroker
from dramatiq.common import current_millis

from gateway.broker import QueueWakes, WaitingConsumer, idle_wait_seconds

#: Long enough that a test waiting for it would time out first: what ends a wait here is a wake-up.
FOREVER_MS = 600_000
#: Seconds a consumer that should be waiting is watched for not returning.
WATCH = 0.2


class Inner(Consumer):  # type: ignore[misc]
    """Hands out the messages it is given, then finds nothing; its first ``failing`` acks raise."""

    def __init__(self, messages: list[MessageProxy] | None = None, *, failing: int = 0) -> None:
        self.messages = list(messages or [])
        self.failing = failing
        self.requeued: list[MessageProxy] = []

    def ack(self, message: MessageProxy) -> None:
        if self.failing:
            self.failing -= 1
            raise ConnectionError("Redis is gone")

    def nack(self, message: MessageProxy) -> None:
        pass

    def requeue(self, messages: Any) -> None:
        self.requeued += list(messages)

    def __next__(self) -> MessageProxy | None:
        return self.messages.pop(0) if self.messages else None


class Recording:
    """A wake-up signal that records what it published."""

    def __init__(self, *, fails: bool = False) -> None:
        self.published: list[str] = []
        self.fails = fails

    def publish(self, name: str) -> None:
        if self.fails:
            raise ConnectionError("Redis is gone")
        self.published.append(name)

    def subscribe(self, listener: Any) -> None:
        pass

    def close(self) -> None:
        pass


def proxy(**options: Any) -> MessageProxy:
    return MessageProxy(Message(queue_name="q", actor_name="a", args=(), kwargs={}, options=options))


def consumer(inner: Inner, *, prefetch: int = 10, stopping: threading.Event | None = None,
             put_back: Any = lambda: None) -> WaitingConsumer:
    return WaitingConsumer(inner, prefetch=prefetch, stopping=stopping or threading.Event(),
                           idle_poll_ms=FOREVER_MS, stop_poll_ms=1, put_back=put_back)


def next_in_thread(waiting: WaitingConsumer) -> tuple[threading.Thread, list[Any]]:
    got: list[Any] = []
    thread = threading.Thread(target=lambda: got.append(next(waiting)), daemon=True)
    thread.start()
    return thread, got


def returned(thread: threading.Thread, got: list[Any]) -> bool:
    thread.join(5)
    return not thread.is_alive() and got == [None]


def still_waiting(thread: threading.Thread) -> bool:
    thread.join(WATCH)
    return thread.is_alive()


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
    waiting = consumer(Inner())
    thread, got = next_in_thread(waiting)
    assert still_waiting(thread)  # nothing to fetch: it waits (for ten minutes, unless woken)
    waiting.wake()
    assert returned(thread, got)


def test_a_consumer_holding_a_due_delayed_message_does_not_wait_past_it() -> None:
    waiting = consumer(Inner([proxy(eta=current_millis() - 1)]))
    assert next(waiting) is not None  # Dramatiq holds it until its eta: the consumer must come back by then
    assert returned(*next_in_thread(waiting))


def test_once_its_delayed_message_is_released_the_consumer_waits_again() -> None:
    waiting = consumer(Inner([proxy(eta=current_millis() - 1)]))
    waiting.ack(next(waiting))  # released and acknowledged: no due time left to come back for
    thread, got = next_in_thread(waiting)
    assert still_waiting(thread)
    waiting.wake()
    assert returned(thread, got)


def test_an_ack_wakes_a_waiting_consumer_that_held_all_it_may() -> None:
    waiting = consumer(Inner([proxy()]), prefetch=1)
    held = next(waiting)
    assert waiting.full
    thread, got = next_in_thread(waiting)
    waiting.ack(held)  # a slot is free: look again now
    assert returned(thread, got)


def test_an_ack_leaves_a_consumer_with_room_waiting() -> None:
    waiting = consumer(Inner([proxy()]), prefetch=2)
    held = next(waiting)
    thread, got = next_in_thread(waiting)
    waiting.ack(held)  # it had room: nothing waited for this slot
    assert still_waiting(thread)
    waiting.wake()
    assert returned(thread, got)


def test_an_ack_that_failed_and_is_tried_again_counts_once() -> None:
    first, second = proxy(), proxy()
    waiting = consumer(Inner([first, second], failing=1), prefetch=2)
    next(waiting), next(waiting)
    with pytest.raises(ConnectionError):
        waiting.ack(first)  # Dramatiq tries again after a connection error
    assert waiting.full
    waiting.ack(first)
    assert not waiting.full
    waiting.ack(first)  # a repeat changes nothing
    assert not waiting.full


def test_messages_put_back_wake_the_other_processes() -> None:
    put_back: list[bool] = []
    inner = Inner([proxy()])
    waiting = consumer(inner, prefetch=1, put_back=lambda: put_back.append(True))
    message = next(waiting)
    waiting.requeue([message])
    assert inner.requeued == [message] and put_back == [True] and not waiting.full


def test_a_stopping_consumer_looks_again_without_waiting_for_a_wake_up() -> None:
    stopping = threading.Event()
    stopping.set()
    assert returned(*next_in_thread(consumer(Inner(), stopping=stopping)))


def enqueue(wakes: QueueWakes) -> None:
    broker = StubBroker()
    broker.add_middleware(wakes)
    broker.declare_queue("q")
    broker.enqueue(Message(queue_name="q", actor_name="a", args=(), kwargs={}, options={}))
    assert broker.queues["q"].qsize() == 1
    broker.close()


def test_a_job_enqueued_where_no_consumer_runs_wakes_the_other_processes() -> None:
    signal = Recording()
    enqueue(QueueWakes(signal))
    assert signal.published == ["q"]


def test_a_job_enqueued_beside_a_consumer_with_room_wakes_only_that_consumer() -> None:
    signal = Recording()
    wakes = QueueWakes(signal)
    waiting = consumer(Inner())
    wakes.register("q", waiting)
    thread, got = next_in_thread(waiting)
    enqueue(wakes)
    assert returned(thread, got) and signal.published == []


def test_a_job_enqueued_beside_a_full_consumer_wakes_the_other_processes_too() -> None:
    signal = Recording()
    wakes = QueueWakes(signal)
    waiting = consumer(Inner([proxy()]), prefetch=1)
    wakes.register("q", waiting)
    next(waiting)
    enqueue(wakes)
    assert signal.published == ["q"]


def test_a_wake_up_that_cannot_be_sent_is_logged_and_the_enqueue_stands(caplog: pytest.LogCaptureFixture) -> None:
    enqueue(QueueWakes(Recording(fails=True)))
    assert "could not wake the consumers of queue q (ConnectionError: Redis is gone)" in caplog.text
