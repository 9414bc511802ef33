"""The job broker: Dramatiq on Redis at scale, in-process when no Redis is configured.

Actors are declared on an explicit broker (never the global one), so importing a module
never binds work to the wrong broker.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker

__all__ = ["Jobs", "Sweeper", "make_broker", "make_worker"]

log = logging.getLogger(__name__)

#: Milliseconds a worker waits on an empty queue before polling again (keeps delays tight).
WORKER_TIMEOUT_MS = 100
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


class Jobs:
    """Declares the gateway's actors on one broker and enqueues them."""

    def __init__(self, broker: dramatiq.Broker) -> None:
        self.broker = broker
        self._actors: dict[str, dramatiq.Actor[Any, Any]] = {}

    def declare(self, name: str, fn: Callable[..., Any], *, queue: str, max_retries: int = 10) -> None:
        """Declare ``fn`` as actor ``name`` on ``queue``."""
        def run(*args: Any) -> None:
            fn(*args)  # results are recorded in the store, not returned to the broker

        run.__name__ = run.__qualname__ = name
        declare = dramatiq.actor(
            broker=self.broker, actor_name=name, queue_name=queue, max_retries=max_retries,
            min_backoff=1000, max_backoff=300_000,
        )
        self._actors[name] = declare(run)

    def send(self, name: str, *args: Any, delay_seconds: float = 0) -> None:
        """Enqueue actor ``name`` with ``args`` (after ``delay_seconds``)."""
        delay = int(delay_seconds * 1000) or None
        self._actors[name].send_with_options(args=args, delay=delay)


class Sweeper:
    """Every ``interval`` seconds, calls ``sweep`` until stopped: re-enqueues work the store says is due."""

    def __init__(self, sweep: Callable[[], None], *, interval: float = 5.0) -> None:
        self._sweep = sweep
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gateway-sweeper", daemon=True)

    def start(self) -> None:
        """Start sweeping in a background thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop after the current sweep."""
        self._stop.set()
        self._thread.join(timeout=self._interval + 5)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self._sweep()
            except Exception:
                log.warning("sweep failed", exc_info=True)
            self._stop.wait(max(0.0, self._interval - (time.monotonic() - started)))
