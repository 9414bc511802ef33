"""The job broker: Dramatiq on Redis at scale, in-process when no Redis is configured.

Idle consumers wait for a wake-up instead of polling. Dramatiq's consumers look at their queue every
``worker_timeout`` when it is empty (on Redis, a Lua script call each time; six queues counting the
delay queues), which cost an idle Redis worker about 2% of a core at 250 ms. Here each consumer, once
its queue is empty, waits until :class:`QueueWakes` (a Dramatiq middleware) wakes it after a message is
enqueued on that queue: in this process directly, and through Redis pub/sub
(:class:`~gateway.messenger.live.RedisSignal`, one channel per namespace) in the other processes,
unless this process's consumer takes the job now. A consumer holding delayed messages waits no longer
than the earliest one's due time, so Dramatiq releases it on time; a freed prefetch slot (an ack) wakes
it too, and messages a stopping worker puts back wake the others. Wake-ups promise nothing: a consumer
looks at its queue at least every ``IDLE_POLL_MS`` anyway (a lost wake-up, a message Dramatiq's
maintenance put back, the worker's heartbeat). The actors themselves are declared in ``gateway.jobs``.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterable
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
    """This process's consumers' wake-ups: after every enqueue on a queue, its consumer here is woken, and
    the other processes' through ``publisher`` unless that one takes the job now; while a worker runs,
    what other processes publish (on a ``listener`` made for that worker) wakes the consumers here; when
    the worker stops, every consumer is woken and polls until it has stopped."""

    def __init__(self, publisher: ChangeSignal | None = None,
                 listener: Callable[[], ChangeSignal] | None = None) -> None:
        self._publisher = publisher
        self._make_listener = listener
        self._listener: ChangeSignal | None = None
        self._consumers: dict[str, WaitingConsumer] = {}
        self._lock = threading.Lock()
        #: Set while a worker of this broker stops: consumers then look at their queue every ``worker_timeout``.
        self.stopping = threading.Event()

    def register(self, queue_name: str, consumer: WaitingConsumer) -> None:
        """``consumer`` is this process's consumer of ``queue_name`` from now on; the first one of a worker
        makes this process listen to other processes' wake-ups. Returns once the listening has begun (or
        after ``IDLE_POLL_MS``), so no wake-up sent after the consumer's first look is missed."""
        with self._lock:
            self._consumers[queue_name] = consumer
            listen = self._listener is None and self._make_listener is not None
            if listen and self._make_listener is not None:
                self._listener = self._make_listener()
            listener = self._listener
        if listener is None:
            return
        if listen:
            listener.subscribe(self.wake)
        subscribed = getattr(listener, "subscribed", None)
        if isinstance(subscribed, threading.Event):
            subscribed.wait(IDLE_POLL_MS / 1000)

    def wake(self, queue_name: str) -> None:
        """Wake the consumer of ``queue_name`` in this process, if it has one."""
        consumer = self._consumers.get(queue_name)
        if consumer is not None:
            consumer.wake()

    def publish(self, queue_name: str) -> None:
        """Wake the consumers of ``queue_name`` in the other processes. A wake-up that cannot be sent is
        logged; they find the job when they next look."""
        if self._publisher is None:
            return
        try:
            self._publisher.publish(queue_name)
        except Exception as exc:  # noqa: BLE001 - Redis is down: logged; the consumers poll
            log.warning("could not wake the consumers of queue %s (%s); they find the job within %.0f s",
                        queue_name, one_line(exc), IDLE_POLL_MS / 1000)

    def after_enqueue(self, broker: dramatiq.Broker, message: dramatiq.Message[Any], delay: int | None) -> None:
        """Wake the consumers of the message's queue (its delay queue when delayed): this process's own, and
        the other processes' unless this one's takes the job now (it has room and is not stopping): another
        process's could not take it from there. The message is enqueued whatever happens here."""
        local = self._consumers.get(message.queue_name)
        if local is not None:
            local.wake()
        if local is None or local.full or self.stopping.is_set():
            self.publish(message.queue_name)

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        """A worker started: consumers wait for wake-ups again."""
        self.stopping.clear()

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        """A worker stops: no consumer waits for a wake-up any more, so it sees its stop in time."""
        self.stopping.set()
        with self._lock:
            consumers = list(self._consumers.values())
        for consumer in consumers:
            consumer.wake()

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        """The worker stopped: stop listening to other processes' wake-ups (a next worker listens anew)."""
        with self._lock:
            listener, self._listener = self._listener, None
            self._consumers.clear()
        if listener is not None:
            listener.close()


class WaitingConsumer(Consumer):
    """One of Dramatiq's consumers, made to wait for a wake-up when its queue is empty, not to poll:
    ``inner`` is asked to look once (it is made with no wait of its own) and, when it finds nothing, this
    waits for :meth:`wake`, at most ``idle_poll_ms``, or until the earliest delayed message it handed out
    is due. When it holds ``prefetch`` messages not acked yet (:attr:`full`), an ack wakes it. While
    ``stopping``, it looks every ``stop_poll_ms`` instead. Messages it puts back on the queue wake the
    other processes' consumers (``put_back``)."""

    def __init__(self, inner: Consumer, *, prefetch: int, stopping: threading.Event, idle_poll_ms: int,
                 stop_poll_ms: int, put_back: Callable[[], None] = lambda: None) -> None:
        self._inner = inner
        self._prefetch = prefetch
        self._stopping = stopping
        self._idle_poll_ms = idle_poll_ms
        self._stop_poll_ms = stop_poll_ms
        self._put_back = put_back
        self._woken = threading.Event()
        self._lock = threading.Lock()  # acks come from the worker's threads
        # The messages handed out and not acked yet, by identity (a message id repeats across re-sends),
        # kept alive so an identity is not reused; the value is the token of a delayed one's due time.
        self._out: dict[int, tuple[MessageProxy, int | None]] = {}
        self._due: list[tuple[int, int]] = []  # (eta, token) of delayed messages handed out: a heap
        self._waiting: set[int] = set()  # the tokens of those not acked yet
        self._tokens = itertools.count()

    @property
    def full(self) -> bool:
        """Whether it holds all the messages its prefetch allows (it looks again after an ack)."""
        return len(self._out) >= self._prefetch

    def wake(self) -> None:
        """End its wait, or its next one: something is on the queue, or the worker stops."""
        self._woken.set()

    def ack(self, message: MessageProxy) -> None:
        self._inner.ack(message)  # when this raises, Dramatiq tries again: the message is still held
        self._settled(message)

    def nack(self, message: MessageProxy) -> None:
        self._inner.nack(message)
        self._settled(message)

    def requeue(self, messages: Iterable[MessageProxy]) -> None:
        messages = list(messages)
        self._inner.requeue(messages)
        for message in messages:
            self._settled(message)
        if messages:
            self._put_back()

    def close(self) -> None:
        self._inner.close()

    def __next__(self) -> MessageProxy | None:
        self._woken.clear()  # before looking: a message enqueued from now on sets it again
        message = next(self._inner)
        if message is not None:
            eta = message.options.get("eta")
            due = int(eta) if isinstance(eta, int | float) else None
            token = next(self._tokens) if due is not None else None
            with self._lock:
                self._out[id(message)] = (message, token)
                if due is not None and token is not None:
                    heapq.heappush(self._due, (due, token))
                    self._waiting.add(token)
            return message
        if self._stopping.is_set():
            time.sleep(self._stop_poll_ms / 1000)
        else:
            self._woken.wait(idle_wait_seconds(current_millis(), self._next_due(), self._idle_poll_ms))
        return None

    def _next_due(self) -> int | None:
        with self._lock:
            while self._due and self._due[0][1] not in self._waiting:
                heapq.heappop(self._due)
            return self._due[0][0] if self._due else None

    def _settled(self, message: MessageProxy) -> None:
        with self._lock:
            full = self.full
            held = self._out.pop(id(message), None)  # another consumer's (before a restart): nothing held here
            if held is not None and held[1] is not None:
                self._waiting.discard(held[1])
        if full and held is not None:
            self._woken.set()  # a prefetch slot is free again: look for what waited


class _Waking(dramatiq.Broker):
    """What both brokers add: the wake-ups middleware, and consumers that wait for it (Dramatiq's own
    consumer, made with no wait of its own, inside a :class:`WaitingConsumer`)."""

    wakes: QueueWakes
    idle_poll_ms: int

    def _wait_for(self, wakes: QueueWakes, idle_poll_ms: int) -> None:
        self.wakes, self.idle_poll_ms = wakes, idle_poll_ms
        self.add_middleware(wakes)

    def consume(self, queue_name: str, prefetch: int = 1, timeout: int = 5000) -> Consumer:
        consumer = WaitingConsumer(super().consume(queue_name, prefetch, timeout=0), prefetch=prefetch,
                                   stopping=self.wakes.stopping, idle_poll_ms=self.idle_poll_ms,
                                   stop_poll_ms=timeout, put_back=lambda: self.wakes.publish(queue_name))
        self.wakes.register(queue_name, consumer)
        return consumer


class _WakingRedisBroker(_Waking, RedisBroker):
    def __init__(self, url: str, *, namespace: str, idle_poll_ms: int) -> None:
        super().__init__(url=url, namespace=namespace)  # type: ignore[no-untyped-call]
        channel = f"{namespace}:wake-ups"
        self._wait_for(QueueWakes(RedisSignal(url, channel=channel, purpose="queue wake-ups"),
                                  lambda: RedisSignal(url, channel=channel, purpose="queue wake-ups")),
                       idle_poll_ms)


class _WakingStubBroker(_Waking, StubBroker):
    def __init__(self, *, idle_poll_ms: int) -> None:
        super().__init__()
        self._wait_for(QueueWakes(), idle_poll_ms)
