"""The job broker: Dramatiq on Redis at scale, in-process when no Redis is configured.

Idle consumers wait for a wake-up instead of polling. Dramatiq's consumers look at their queue every
``worker_timeout`` when it is empty (on Redis, a Lua script call each time; six queues counting the
delay queues), which cost an idle Redis worker about 2% of a core at 250 ms. Here each consumer, once
its queue is empty, waits on an event of this process that :class:`QueueWakes` (a Dramatiq middleware)
sets when a message is enqueued on that queue: in this process directly, and in other processes
through Redis pub/sub (:class:`~gateway.messenger.live.RedisSignal`, one channel per namespace). A
consumer holding delayed messages waits no longer than the earliest one's due time, so Dramatiq
releases it on time; a freed prefetch slot (an ack) wakes it too. Wake-ups promise nothing: a consumer
looks at its queue at least every ``IDLE_POLL_MS`` anyway (a lost wake-up, a message Dramatiq's
maintenance put back, the worker's heartbeat). The actors themselves are declared in ``gateway.jobs``.
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections.abc import Iterable
from typing import Any

import dramatiq
from dramatiq.broker import Consumer, MessageProxy
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.common import current_millis

from gateway.logs import one_line
from gateway.messenger.live import ChangeSignal, RedisSignal

__all__ = [
    "IDLE_POLL_MS",
    "INBOUND_QUEUE",
    "OUTBOUND_QUEUE",
    "UNSEEN_QUEUE",
    "QueueWakes",
    "WaitingConsumer",
    "idle_wait_seconds",
    "make_broker",
    "make_worker",
    "ping",
]

log = logging.getLogger(__name__)

#: Milliseconds a worker's threads wait on an empty work queue before looking again (and how often a
#: consumer looks at its queue while the worker stops): each of the worker's threads wakes this often when
#: idle, and a stop takes up to this long. 100 ms cost an idle ``serve`` 1.4% of a core, 250 ms 0.87%,
#: 500 ms 0.60% (docs/benchmarks.md), when the consumers polled at this interval too.
WORKER_TIMEOUT_MS = 250
#: Milliseconds an idle consumer waits for a wake-up before it looks at its queue anyway.
IDLE_POLL_MS = 2000
#: Queue for outbound delivery.
OUTBOUND_QUEUE = "outbound"
#: Queue for inbound processing.
INBOUND_QUEUE = "inbound"
#: Queue for the unseen checks of teammate replies (delayed messages).
UNSEEN_QUEUE = "unseen"


def make_broker(
    redis_url: str | None, *, namespace: str = "web2chat", idle_poll_ms: int = IDLE_POLL_MS
) -> dramatiq.Broker:
    """``RedisBroker`` for ``redis_url``; an in-process broker (Dramatiq's stub) when it is None. Either way
    its idle consumers wait for wake-ups (:class:`QueueWakes`), looking at least every ``idle_poll_ms``."""
    if redis_url:
        return _WakingRedisBroker(redis_url, namespace=namespace, idle_poll_ms=idle_poll_ms)
    return _WakingStubBroker(idle_poll_ms=idle_poll_ms)


def make_worker(broker: dramatiq.Broker, *, threads: int) -> dramatiq.Worker:
    """A worker for every queue of ``broker``; call ``start()`` and later ``stop()``."""
    return dramatiq.Worker(broker, worker_threads=threads, worker_timeout=WORKER_TIMEOUT_MS)


def ping(broker: dramatiq.Broker) -> None:
    """Raise unless ``broker`` answers: its Redis must reply to PING; the in-process broker always answers."""
    client = getattr(broker, "client", None)
    if client is not None:
        client.ping()


def idle_wait_seconds(now_ms: int, due_ms: int | None, idle_poll_ms: int) -> float:
    """How long an idle consumer waits for a wake-up: ``idle_poll_ms``, or until just after ``due_ms`` (the
    earliest delayed message it holds) when that is sooner; never negative."""
    wait_ms = idle_poll_ms if due_ms is None else min(idle_poll_ms, max(0, due_ms - now_ms + 1))
    return wait_ms / 1000


class QueueWakes(dramatiq.Middleware):
    """This process's wake-up events, one per queue: set after every enqueue on that queue (here, and in
    other processes through ``signal``), and all at once when the worker stops."""

    def __init__(self, signal: ChangeSignal | None = None) -> None:
        self._signal = signal
        self._events: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        self._listening = False
        #: Set while a worker of this broker stops: consumers then look at their queue every ``worker_timeout``.
        self.stopping = threading.Event()

    def event(self, queue_name: str) -> threading.Event:
        """The wake-up event of ``queue_name`` (its consumer waits on it); the first one makes this
        process listen to other processes' wake-ups."""
        with self._lock:
            woken = self._events.setdefault(queue_name, threading.Event())
            listen, self._listening = not self._listening, True
        if listen and self._signal is not None:
            self._signal.subscribe(self.wake)
        return woken

    def wake(self, queue_name: str) -> None:
        """Wake the consumer of ``queue_name`` in this process, if it has one."""
        woken = self._events.get(queue_name)
        if woken is not None:
            woken.set()

    def after_enqueue(self, broker: dramatiq.Broker, message: dramatiq.Message[Any], delay: int | None) -> None:
        """Wake the consumer of the message's queue (its delay queue when delayed): this process's own when it
        has one (it takes the message now: another process's could not take it from there), otherwise the
        other processes'. The message is enqueued whatever happens here; a wake-up that cannot be sent is
        logged, and the consumers find the message when they next look."""
        woken = self._events.get(message.queue_name)
        if woken is not None and not self.stopping.is_set():
            woken.set()
        elif self._signal is not None:
            try:
                self._signal.publish(message.queue_name)
            except Exception as exc:  # noqa: BLE001 - Redis is down: logged; the consumers poll
                log.warning("could not wake the consumers of queue %s (%s); they find the job within %.0f s",
                            message.queue_name, one_line(exc), IDLE_POLL_MS / 1000)

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        """A worker started: consumers wait for wake-ups again."""
        self.stopping.clear()

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        """A worker stops: no consumer waits for a wake-up any more, so it sees its stop in time."""
        self.stopping.set()
        with self._lock:
            events = list(self._events.values())
        for woken in events:
            woken.set()

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        """The worker stopped: stop listening to other processes' wake-ups."""
        if self._signal is not None:
            self._signal.close()


class WaitingConsumer(Consumer):
    """One of Dramatiq's consumers, made to wait for a wake-up (``woken``) when its queue is empty, not to
    poll: ``inner`` is asked to look once (it is made with no wait of its own) and, when it finds nothing,
    this waits for ``woken``, at most ``idle_poll_ms``, or until the earliest delayed message it handed
    out is due. When it holds ``prefetch`` messages not acked yet, an ack wakes it. While ``stopping``, it
    looks every ``stop_poll_ms`` instead."""

    def __init__(self, inner: Consumer, woken: threading.Event, *, prefetch: int, stopping: threading.Event,
                 idle_poll_ms: int, stop_poll_ms: int) -> None:
        self._inner = inner
        self._prefetch = prefetch
        self._held = 0  # messages handed out and not acked yet (acks come from the worker's threads)
        self._lock = threading.Lock()
        self._woken = woken
        self._stopping = stopping
        self._idle_poll_ms = idle_poll_ms
        self._stop_poll_ms = stop_poll_ms
        self._due: list[tuple[int, str]] = []  # (eta, message id) of delayed messages handed out, a heap
        self._delayed: set[str] = set()  # those not acked yet

    def ack(self, message: MessageProxy) -> None:
        try:
            self._inner.ack(message)
        finally:
            self._settled(message)

    def nack(self, message: MessageProxy) -> None:
        try:
            self._inner.nack(message)
        finally:
            self._settled(message)

    def requeue(self, messages: Iterable[MessageProxy]) -> None:
        self._inner.requeue(messages)

    def close(self) -> None:
        self._inner.close()

    def __next__(self) -> MessageProxy | None:
        self._woken.clear()  # before looking: a message enqueued from now on sets it again
        message = next(self._inner)
        if message is not None:
            with self._lock:
                self._held += 1
            eta = message.options.get("eta")
            if isinstance(eta, int | float):
                heapq.heappush(self._due, (int(eta), message.message_id))
                self._delayed.add(message.message_id)
            return message
        if self._stopping.is_set():
            time.sleep(self._stop_poll_ms / 1000)
        else:
            self._woken.wait(idle_wait_seconds(current_millis(), self._next_due(), self._idle_poll_ms))
        return None

    def _next_due(self) -> int | None:
        while self._due and self._due[0][1] not in self._delayed:
            heapq.heappop(self._due)
        return self._due[0][0] if self._due else None

    def _settled(self, message: MessageProxy) -> None:
        self._delayed.discard(message.message_id)
        with self._lock:
            full, self._held = self._held >= self._prefetch, self._held - 1
        if full:
            self._woken.set()  # a prefetch slot is free again: look for what waited


def _waiting(inner: Consumer, wakes: QueueWakes, queue_name: str, *, prefetch: int, idle_poll_ms: int,
             timeout: int) -> Consumer:
    return WaitingConsumer(inner, wakes.event(queue_name), prefetch=prefetch, stopping=wakes.stopping,
                           idle_poll_ms=idle_poll_ms, stop_poll_ms=timeout)


class _WakingRedisBroker(RedisBroker):
    def __init__(self, url: str, *, namespace: str, idle_poll_ms: int) -> None:
        super().__init__(url=url, namespace=namespace)  # type: ignore[no-untyped-call]
        self.wakes = QueueWakes(RedisSignal(url, channel=f"{namespace}:wake-ups"))
        self.idle_poll_ms = idle_poll_ms
        self.add_middleware(self.wakes)

    def consume(self, queue_name: str, prefetch: int = 1, timeout: int = 5000) -> Consumer:
        inner = super().consume(queue_name, prefetch, timeout=0)
        return _waiting(inner, self.wakes, queue_name, prefetch=prefetch, idle_poll_ms=self.idle_poll_ms,
                        timeout=timeout)


class _WakingStubBroker(StubBroker):
    def __init__(self, *, idle_poll_ms: int, **options: Any) -> None:
        super().__init__(**options)
        self.wakes = QueueWakes()
        self.idle_poll_ms = idle_poll_ms
        self.add_middleware(self.wakes)

    def consume(self, queue_name: str, prefetch: int = 1, timeout: int = 100) -> Consumer:
        inner = super().consume(queue_name, prefetch, timeout=0)
        return _waiting(inner, self.wakes, queue_name, prefetch=prefetch, idle_poll_ms=self.idle_poll_ms,
                        timeout=timeout)
