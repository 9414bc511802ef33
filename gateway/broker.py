"""The job broker: Dramatiq on Redis at scale, in-process when no Redis is configured.

The actors themselves are declared in ``gateway.jobs``.
"""

from __future__ import annotations

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker

__all__ = ["INBOUND_QUEUE", "OUTBOUND_QUEUE", "UNSEEN_QUEUE", "make_broker", "make_worker", "ping"]

#: Milliseconds a worker's threads wait on an empty queue before looking again: a delayed job (an unseen
#: check, an email's retry) runs at most this late, and each of the worker's threads wakes this often when
#: idle. 100 ms cost an idle ``serve`` 1.4% of a core, 250 ms 0.87%, 500 ms 0.60% (docs/benchmarks.md).
WORKER_TIMEOUT_MS = 250
#: Queue for outbound delivery.
OUTBOUND_QUEUE = "outbound"
#: Queue for inbound processing.
INBOUND_QUEUE = "inbound"
#: Queue for the unseen checks of teammate replies (delayed messages).
UNSEEN_QUEUE = "unseen"


def make_broker(redis_url: str | None, *, namespace: str = "web2chat") -> dramatiq.Broker:
    """``RedisBroker`` for ``redis_url``; an in-process broker (Dramatiq's stub) when it is None."""
    if redis_url:
        return RedisBroker(url=redis_url, namespace=namespace)  # type: ignore[no-untyped-call]
    return StubBroker()


def make_worker(broker: dramatiq.Broker, *, threads: int) -> dramatiq.Worker:
    """A worker for every queue of ``broker``; call ``start()`` and later ``stop()``."""
    return dramatiq.Worker(broker, worker_threads=threads, worker_timeout=WORKER_TIMEOUT_MS)


def ping(broker: dramatiq.Broker) -> None:
    """Raise unless ``broker`` answers: its Redis must reply to PING; the in-process broker always answers."""
    client = getattr(broker, "client", None)
    if client is not None:
        client.ping()
