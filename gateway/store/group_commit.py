"""Group commit: events applied at the same moment share one transaction and one fsync.

Each caller hands :meth:`GroupCommit.run` its work (a function of the connection). The first
caller to find nobody committing becomes the leader: it takes every waiting work (up to
``max_group``), runs them in one transaction, commits once, then answers every caller and
hands the lead to the next waiting caller. The others just wait. There is no thread of its
own to start or stop; a lone caller leads its own group of one. Under load (the last group
had company) a new leader first waits up to ``commit_delay`` (1 ms) for as many works as
that group had, so callers answered together commit together again.

- A work that raises rolls the whole transaction back; the works then run again, each inside
  its own ``SAVEPOINT`` of a new transaction: the one that raises (again) leaves nothing and
  its caller gets the error, the rest of the group commits. Works must therefore be safe to
  run twice (they are: a rolled-back run left nothing; state they keep aside starts over).
- Nobody is answered before the commit has returned (durable: SQLite ``synchronous=FULL``).
  If the transaction or its commit fails, every caller of the group gets that error and
  nothing of the group is applied.

Worth it on SQLite, where every commit waits for an fsync and writers take turns anyway.
PostgreSQL already lets concurrent commits share a WAL flush, and one transaction holding
several customers' rows could deadlock with another process's, so there each work runs in a
transaction of its own (``grouped=False``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from sqlalchemy import Connection
from sqlalchemy.engine import Engine

__all__ = ["COMMIT_DELAY", "MAX_GROUP", "GroupCommit"]

#: Most works one shared transaction carries.
MAX_GROUP = 64
#: Seconds a leader waits for its group to fill when the last group had company.
COMMIT_DELAY = 0.001

T = TypeVar("T")


class _RunAgain(Exception):
    """A work of the group raised: the group's transaction rolls back and each work runs again."""


class _Waiting(Generic[T]):
    """One caller's work and, once its group has committed, its outcome."""

    __slots__ = ("done", "error", "fn", "result", "wake")

    def __init__(self, fn: Callable[[Connection], T]) -> None:
        self.fn = fn
        self.wake = threading.Event()
        self.done = False
        self.result: T | None = None
        self.error: BaseException | None = None


class GroupCommit:
    """Runs works in shared transactions (``grouped``) or each in its own."""

    def __init__(
        self, engine: Engine, *, grouped: bool, max_group: int = MAX_GROUP, commit_delay: float = COMMIT_DELAY
    ) -> None:
        self._engine = engine
        self.grouped = grouped
        self._max_group = max_group
        self._commit_delay = commit_delay
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)  # a leader waiting for its group to fill
        self._expecting = 0  # how many waiting works that leader waits for (0: none is waiting)
        self._last_group = 1
        self._waiting: list[_Waiting[Any]] = []
        self._leading = False
        self._leader: int | None = None  # the leading thread, to refuse a work that calls run() (it would wait forever)

    @property
    def pending(self) -> int:
        """How many works wait for the next group."""
        with self._lock:
            return len(self._waiting)

    def run(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn(conn)`` in a transaction; return its result once that transaction committed."""
        if not self.grouped:
            with self._engine.begin() as conn:
                return fn(conn)
        me = _Waiting(fn)
        with self._lock:
            if self._leader == threading.get_ident():
                raise RuntimeError("GroupCommit.run called from inside a work of its own group")
            self._waiting.append(me)
            if self._expecting and len(self._waiting) >= self._expecting:
                self._arrived.notify()
        while True:
            with self._lock:
                if me.done:
                    break
                group: list[_Waiting[Any]] | None = None
                if self._leading:
                    me.wake.clear()
                else:
                    self._leading, self._leader = True, threading.get_ident()
                    self._await_group()
                    group, self._waiting = self._waiting[: self._max_group], self._waiting[self._max_group:]
                    self._last_group = len(group)
            if group is None:
                me.wake.wait()
                continue
            try:
                self._commit(group)
            finally:
                with self._lock:
                    self._leading, self._leader = False, None
                    successor = self._waiting[0] if self._waiting else None
                if successor is not None:
                    successor.wake.set()
        if me.error is not None:
            raise me.error
        return me.result  # type: ignore[return-value]  # set by the group's commit

    def _await_group(self) -> None:
        """Under load (the last group had company), wait up to ``commit_delay`` for as many
        works as it had: callers answered together come back together, and a leader that left
        alone would split them into a group of one and a group of the rest (PostgreSQL's
        ``commit_delay`` does the same for WAL flushes). Called holding the lock."""
        expected = min(self._last_group, self._max_group)
        if expected <= 1 or len(self._waiting) >= expected:
            return
        self._expecting = expected
        deadline = time.monotonic() + self._commit_delay
        try:
            while len(self._waiting) < expected and (left := deadline - time.monotonic()) > 0:
                self._arrived.wait(left)
        finally:
            self._expecting = 0

    def _commit(self, group: list[_Waiting[Any]]) -> None:
        try:
            if not self._all_at_once(group):
                self._one_by_one(group)
        except BaseException as exc:  # the transaction failed: nothing of the group is applied
            for waiting in group:
                waiting.result, waiting.error = None, exc
            if not isinstance(exc, Exception):
                raise
        finally:
            with self._lock:  # a follower checks ``done`` and clears its ``wake`` under this lock
                for waiting in group:
                    waiting.done = True
                    waiting.wake.set()

    def _all_at_once(self, group: list[_Waiting[Any]]) -> bool:
        """The common case, without savepoints: every work succeeds and the group commits. False
        (nothing applied) when a work raises; then :meth:`_one_by_one` runs the works again."""
        try:
            with self._engine.begin() as conn:
                try:
                    results = [waiting.fn(conn) for waiting in group]
                except Exception as exc:
                    if len(group) == 1:
                        raise
                    raise _RunAgain from exc  # rolls back
        except _RunAgain:
            return False
        for waiting, result in zip(group, results, strict=True):
            waiting.result = result
        return True

    def _one_by_one(self, group: list[_Waiting[Any]]) -> None:
        """Each work in a savepoint of one transaction: one that raises rolls back alone."""
        with self._engine.begin() as conn:
            for waiting in group:
                try:
                    with conn.begin_nested():
                        waiting.result = waiting.fn(conn)
                except Exception as exc:  # noqa: BLE001 - raised in its caller; only this work rolls back
                    waiting.error = exc
