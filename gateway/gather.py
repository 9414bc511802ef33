"""Gathering what commits hand on into fewer, larger sends.

The SMTP server commits accepted messages in groups as small as the clients' concurrency (two or
three under load), and each group became one ``process_inbound`` job; the pipeline records a job's
replies in one transaction, which pays per job, not per reply (``bench/bench_landing.py``). A
:class:`Gather` sends values at once when nothing went out in the last ``window`` seconds (a lone
reply waits for nothing), and otherwise holds them until the window since the last send ends or
``most`` are waiting, so under load a job carries what arrived in one window.

The decisions (:meth:`Gather.add`, :meth:`Gather.due`) take the time as an argument; one thread
(started with the first value held) sends what falls due, and :meth:`Gather.close` sends what is
left. Values are the pks of stored messages: one held when a process dies is still in the store,
and the sweeper hands it on.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

__all__ = ["Gather"]

log = logging.getLogger(__name__)


class Gather:
    """Calls ``send(values)`` with what :meth:`add` got: at once after a quiet ``window``, else at the
    window's end or once ``most`` are waiting."""

    def __init__(
        self, send: Callable[[list[int]], None], *, window: float, most: int,
        clock: Callable[[], float] = time.monotonic, name: str = "gateway-gather",
    ) -> None:
        self._send = send
        self._window = window
        self._most = most
        self._clock = clock
        self._name = name
        self._held: list[int] = []
        self._last_sent = float("-inf")
        self._lock = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False

    def add(self, values: Sequence[int]) -> None:
        """Hand on ``values`` (the hand-on of a commit): sent now, or held for the window's end."""
        if not values:
            return
        with self._lock:
            batch = self._offer(values, self._clock())
            if batch is None and self._thread is None and not self._closed:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            self._lock.notify()
        if batch is not None:
            self._send(batch)

    def _offer(self, values: Sequence[int], now: float) -> list[int] | None:
        self._held.extend(values)
        if self._closed or len(self._held) >= self._most or now - self._last_sent >= self._window:
            return self._take(now)
        return None

    def due(self, now: float) -> list[int] | None:
        """The values held whose window has ended at ``now``, taken; None when there are none yet."""
        with self._lock:
            return self._due(now)

    def _due(self, now: float) -> list[int] | None:
        if self._held and now - self._last_sent >= self._window:
            return self._take(now)
        return None

    def _take(self, now: float) -> list[int]:
        batch, self._held = self._held, []
        self._last_sent = now
        return batch

    def close(self) -> None:
        """Send what is held now and stop the thread; later values are sent at once."""
        with self._lock:
            self._closed = True
            batch = self._take(self._clock()) if self._held else None
            thread, self._thread = self._thread, None
            self._lock.notify()
        if thread is not None:
            thread.join(timeout=5)
        if batch:
            self._send(batch)

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._closed and not self._held:
                    self._lock.wait()
                if self._closed:
                    return
                now = self._clock()
                batch = self._due(now)  # the same decision as due(), which the tests drive
                if batch is None:
                    self._lock.wait(self._last_sent + self._window - now)
                    continue
            try:
                self._send(batch)
            except Exception:  # the broker is down: the messages are stored, the sweeper hands them on
                log.warning("could not hand on %d stored messages; the sweeper will", len(batch), exc_info=True)
