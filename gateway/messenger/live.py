"""Wake-up signals: "customer X's view changed", from the process that committed to those that stream.

A signal carries no data and promises nothing: the store is the log, and a stream that misses a
signal still finds the change at the hub's fallback poll. In one process :class:`LocalSignal`
calls its listeners directly; across processes :class:`RedisSignal` goes through Redis pub/sub.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from gateway.logs import one_line

__all__ = ["ChangeSignal", "LocalSignal", "RedisSignal"]

log = logging.getLogger(__name__)

Listener = Callable[[str], None]

#: Redis pub/sub channel the gateway's processes signal changes on.
DEFAULT_CHANNEL = "web2chat:messenger:changes"
#: Seconds a Redis call may take before the publisher gives up (the fallback poll covers it).
REDIS_TIMEOUT = 0.5
#: Seconds the subscriber waits before reconnecting after Redis went away.
RECONNECT_DELAY = 1.0


class ChangeSignal(Protocol):
    """Publishes and delivers wake-ups; listeners are called from any thread."""

    def publish(self, customer_id: str) -> None:
        """Tell every listener (in every process) that ``customer_id``'s view changed."""

    def publish_many(self, customer_ids: Sequence[str]) -> None:
        """:meth:`publish` each of ``customer_ids`` (what one commit changed), in one go where it can."""

    def subscribe(self, listener: Listener) -> None:
        """Call ``listener(customer_id)`` for every wake-up from now on."""

    def close(self) -> None:
        """Stop delivering; release connections."""


class _Listeners:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._listeners: list[Listener] = []

    def add(self, listener: Listener) -> None:
        with self._lock:
            self._listeners.append(listener)

    def call(self, customer_id: str) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(customer_id)
            except Exception:  # one broken listener must not starve the others
                log.warning("change listener failed", exc_info=True)


class LocalSignal:
    """Wake-ups within one process (the embedded default, and the fake for tests)."""

    def __init__(self) -> None:
        self._listeners = _Listeners()

    def publish(self, customer_id: str) -> None:
        """Call every listener now, in this thread."""
        self._listeners.call(customer_id)

    def publish_many(self, customer_ids: Sequence[str]) -> None:
        """Call every listener for each customer, in this thread."""
        for customer_id in customer_ids:
            self._listeners.call(customer_id)

    def subscribe(self, listener: Listener) -> None:
        """Add ``listener``."""
        self._listeners.add(listener)

    def close(self) -> None:
        """Nothing to release."""


class RedisSignal:
    """Wake-ups across processes through Redis pub/sub; subscribing starts one listener thread."""

    def __init__(self, url: str, *, channel: str = DEFAULT_CHANNEL, client: Any = None,
                 purpose: str = "messenger signal") -> None:
        """``purpose`` names the signal in its log lines."""
        import redis

        self._url = url
        self._channel = channel
        self._purpose = purpose
        self._client = client or redis.Redis.from_url(
            url, socket_timeout=REDIS_TIMEOUT, socket_connect_timeout=REDIS_TIMEOUT
        )
        self._listeners = _Listeners()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.subscribed = threading.Event()

    def publish(self, customer_id: str) -> None:
        """Publish on the channel (raises when Redis is unreachable; the caller logs it)."""
        self._client.publish(self._channel, customer_id)

    def publish_many(self, customer_ids: Sequence[str]) -> None:
        """Publish each on the channel in one round trip (a pipeline, not a transaction); raises when
        Redis is unreachable (the caller logs it)."""
        if len(customer_ids) == 1:
            self.publish(customer_ids[0])
            return
        pipe = self._client.pipeline(transaction=False)
        for customer_id in customer_ids:
            pipe.publish(self._channel, customer_id)
        pipe.execute()

    def subscribe(self, listener: Listener) -> None:
        """Add ``listener``; the first one starts the listener thread."""
        self._listeners.add(listener)
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._listen, name="messenger-signal", daemon=True)
                self._thread.start()

    def close(self) -> None:
        """Stop the listener thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _listen(self) -> None:
        import redis

        listener = redis.Redis.from_url(self._url, socket_connect_timeout=REDIS_TIMEOUT)
        failing = False
        while not self._stop.is_set():
            pubsub = listener.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call,unused-ignore]
            try:
                pubsub.subscribe(self._channel)
                self.subscribed.set()
                if failing:
                    log.info("%s: Redis is back; listening again", self._purpose)
                    failing = False
                while not self._stop.is_set():
                    message = pubsub.get_message(timeout=0.5)
                    if message is not None and message.get("type") == "message":
                        data = message["data"]
                        self._listeners.call(data.decode() if isinstance(data, bytes) else str(data))
            except redis.RedisError as exc:
                self.subscribed.clear()
                if not failing:  # one line an outage, not one a second
                    log.warning("%s: Redis unavailable (%s); trying again every %.0f s", self._purpose,
                                one_line(exc), RECONNECT_DELAY)
                    failing = True
                self._stop.wait(RECONNECT_DELAY)
            finally:
                pubsub.close()
        listener.close()
