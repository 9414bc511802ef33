"""The per-process fan-out of Messenger changes to open event streams.

One feed per customer with open streams in this process. A wake-up (from a
:class:`~gateway.messenger.live.ChangeSignal`, or the fallback poll of the changes log) makes the
feed read the store once and keep the new frames in a small buffer that all of that customer's
streams read from. A stream that resumes from before the buffer reads the store directly, so
resuming is exact however long a client was away.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncGenerator, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import anyio.to_thread

from gateway.messenger.live import ChangeSignal

__all__ = ["Frame", "Hub"]

log = logging.getLogger(__name__)

#: Frames each customer's feed keeps for streams that lag a little.
FEED_BUFFER = 256
#: Most changes read from the store at once.
LOAD_BATCH = 200
#: Seconds of silence after which a stream gets a keep-alive.
HEARTBEAT_SECONDS = 15.0
#: Seconds between fallback polls of the changes log (covers lost wake-ups).
POLL_SECONDS = 1.0


@dataclass(frozen=True)
class Frame:
    """One encoded stream event; ``id`` is its change id."""

    id: int
    data: bytes


Load = Callable[[str, int, int], list[Frame]]


class _Feed:
    def __init__(self, customer_id: str, cursor: int) -> None:
        self.customer_id = customer_id
        self.cursor = cursor  # newest change id read from the store
        self.base = cursor  # the buffer holds every frame with an id above this
        self.frames: deque[Frame] = deque()
        self.arrived = asyncio.Event()
        self.members = 0
        self.refreshing = False
        self.again = False

    def after(self, cursor: int) -> list[Frame] | None:
        """Buffered frames after ``cursor``; None when ``cursor`` is older than the buffer."""
        if cursor < self.base:
            return None
        return [f for f in self.frames if f.id > cursor]

    def add(self, frames: list[Frame]) -> None:
        for frame in frames:
            if frame.id > self.cursor:
                self.frames.append(frame)
                self.cursor = frame.id
        while len(self.frames) > FEED_BUFFER:
            self.base = self.frames.popleft().id
        arrived, self.arrived = self.arrived, asyncio.Event()
        arrived.set()


class Hub:
    """Open streams of this process, grouped by customer."""

    def __init__(
        self,
        *,
        load: Load,
        latest: Callable[[str], int],
        tail: Callable[[int], tuple[int, set[str]]],
        signal: ChangeSignal,
        poll_seconds: float = POLL_SECONDS,
        heartbeat_seconds: float = HEARTBEAT_SECONDS,
    ) -> None:
        self._load, self._latest, self._tail = load, latest, tail
        self._signal = signal
        self._poll = poll_seconds
        self._heartbeat = heartbeat_seconds
        self._feeds: dict[str, _Feed] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._tailing = False
        self._tail_after = 0  # the fallback poll looks at changes above this
        self._tail_floor: int | None = None  # lowest cursor of the feeds that joined during a poll
        self._closed = False

    @property
    def streams(self) -> int:
        """How many streams are open in this process."""
        return sum(f.members for f in self._feeds.values())

    def wake(self, customer_id: str) -> None:
        """``customer_id``'s view changed (callable from any thread)."""
        loop = self._loop
        if loop is not None:
            try:
                loop.call_soon_threadsafe(self._woken, customer_id)
            except RuntimeError:  # the loop has closed: nobody is streaming
                pass

    def close(self) -> None:
        """End every stream (callable from any thread), e.g. before the server shuts down."""
        self._closed = True
        loop = self._loop
        if loop is not None:
            try:
                loop.call_soon_threadsafe(self._end_all)
            except RuntimeError:
                pass

    async def stream(self, customer_id: str, after: int | None) -> AsyncGenerator[Frame | None, None]:
        """The customer's frames after change ``after`` (None: from now on), then live ones.

        Yields None once first, when the stream is joined (changes from then on are delivered),
        and again after every quiet ``heartbeat_seconds``.
        """
        self._bind()
        feed = await self._join(customer_id)
        try:
            cursor = feed.cursor if after is None else after
            yield None
            while not self._closed:
                arrived = feed.arrived
                batch = feed.after(cursor)
                if batch is None:
                    batch = await anyio.to_thread.run_sync(self._load, customer_id, cursor, LOAD_BATCH)
                    if not batch:
                        cursor = max(cursor, feed.base)
                if batch:
                    for frame in batch:
                        yield frame
                    cursor = batch[-1].id
                    continue
                try:
                    await asyncio.wait_for(arrived.wait(), self._heartbeat)
                except TimeoutError:
                    yield None
        finally:
            self._leave(feed)

    def _bind(self) -> None:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
            self._signal.subscribe(self.wake)

    async def _join(self, customer_id: str) -> _Feed:
        feed = self._feeds.get(customer_id)
        if feed is None:
            cursor = await anyio.to_thread.run_sync(self._latest, customer_id)
            feed = self._feeds.setdefault(customer_id, _Feed(customer_id, cursor))
            self._refresh_soon(feed)  # a change committed while we read ``latest`` woke no one
            if not self._tailing:
                self._tailing, self._tail_after = True, feed.cursor
                self._spawn(self._poll_log())
            else:  # the poll must not have passed this feed's cursor already
                self._tail_floor = min(feed.cursor, self._tail_floor if self._tail_floor is not None else feed.cursor)
        feed.members += 1
        return feed

    def _leave(self, feed: _Feed) -> None:
        feed.members -= 1
        if feed.members <= 0 and self._feeds.get(feed.customer_id) is feed:
            del self._feeds[feed.customer_id]

    def _woken(self, customer_id: str) -> None:
        feed = self._feeds.get(customer_id)
        if feed is not None:
            self._refresh_soon(feed)

    def _end_all(self) -> None:
        for feed in self._feeds.values():
            feed.arrived.set()

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _refresh_soon(self, feed: _Feed) -> None:
        if feed.refreshing:
            feed.again = True
            return
        feed.refreshing = True
        self._spawn(self._refresh(feed))

    async def _refresh(self, feed: _Feed) -> None:
        try:
            while True:
                feed.again = False
                frames = await anyio.to_thread.run_sync(self._load, feed.customer_id, feed.cursor, LOAD_BATCH)
                if frames:
                    feed.add(frames)
                if len(frames) < LOAD_BATCH and not feed.again:
                    return
        except Exception:  # the store or Redis is down: logged, retried by the fallback poll
            log.warning("messenger feed refresh failed for %r", feed.customer_id, exc_info=True)
        finally:
            feed.refreshing = False

    async def _poll_log(self) -> None:
        """While anyone streams: every ``poll_seconds``, wake the feeds whose customers have new changes."""
        try:
            while self._feeds and not self._closed:
                await asyncio.sleep(self._poll)
                self._tail_floor = None
                try:
                    after, changed = await anyio.to_thread.run_sync(self._tail, self._tail_after)
                except Exception:  # the store is down: logged, tried again next time
                    log.warning("messenger fallback poll failed", exc_info=True)
                    continue
                floor, self._tail_floor = self._tail_floor, None
                self._tail_after = after if floor is None else min(after, floor)
                for customer_id in changed:
                    self._woken(customer_id)
        finally:
            self._tailing = False
