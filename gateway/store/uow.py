"""The unit of work: every write of the gateway, its group commit, and what is handed on after it.

A write is a *work*: a function of a :class:`~sqlalchemy.Connection` that runs inside a
transaction. :meth:`UnitOfWork.run` runs one and returns its result once the transaction has
committed; :meth:`UnitOfWork.submit_async` does the same for a coroutine (the SMTP server's
event loop never blocks on the store).

**Group commit** (``grouped=True``). The first caller to find nobody committing becomes the
leader: it takes every waiting work (up to ``max_group``), runs them in one transaction,
commits once, then answers every caller and hands the lead on. A lone caller leads its own
group of one. Under load (the last group had company) a new leader first waits up to
``commit_delay`` for as many works as that group had (PostgreSQL's ``commit_delay`` idea).
Works submitted from a coroutine are led by the unit's own committer thread (:meth:`start`).

- A work that raises rolls the shared transaction back; the works then run again, each inside
  its own ``SAVEPOINT`` of a new transaction: the one that raises again leaves nothing and its
  caller gets the error, the rest of the group commits. Works must therefore be safe to run
  twice (a rolled-back run left nothing; state they keep aside must start over).
- Nobody is answered before the commit has returned. If the transaction or its commit fails,
  every caller of the group gets that error and nothing of the group is applied.

Ungrouped (``grouped=False``), each work is its own transaction: PostgreSQL already lets
concurrent commits share a WAL flush, and a transaction holding several customers' rows could
deadlock with another process's.

**Hand-ons after commit.** A work calls :func:`note` (``note(conn, "queued_emails", pk)``) for
what must happen once its data is durable: a broker message, a Messenger wake-up, a webhook.
After the commit, each topic's handler (:meth:`HandOns.register`) is called once with every value
the transaction kept, in order, before the callers are answered; values noted by a work that was
rolled back (or by its savepoint) are forgotten. A handler that raises is logged: what it hands
on is committed, and the sweeper finds it in the store. :func:`note` outside a unit of work raises,
so there is exactly one way to act after a commit.

**Conflicts.** A transaction that loses a lock race (PostgreSQL breaking a deadlock, or a
serialization failure: :func:`is_conflict`) left nothing behind, so it runs again, up to
:data:`CONFLICT_RETRIES` times after a short random pause, before its callers get the error. (Ungrouped,
each work is its own transaction; in a group, a work that loses a race inside its own savepoint gets
the error like any other failing work.)

**Durability.** ``durable=False`` marks bookkeeping that is safe to redo (claiming an email,
recording that it was sent): its commit does not wait for the disk (SQLite ``synchronous=NORMAL``
for that transaction, PostgreSQL ``synchronous_commit = off``); it becomes durable with the next
ordinary commit. A group is durable when any of its works is.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Generic, TypeVar

from sqlalchemy import Connection
from sqlalchemy.engine import Engine

from gateway.metrics import COMMIT_GROUP, COMMIT_SECONDS

__all__ = ["COMMIT_DELAY", "CONFLICT_RETRIES", "MAX_GROUP", "HandOns", "UnitOfWork", "is_conflict", "note"]

log = logging.getLogger(__name__)

#: Times a transaction that lost a race (:func:`is_conflict`) runs again before its callers get the error.
CONFLICT_RETRIES = 3
#: SQLSTATEs of a transaction losing a race: deadlock detected, serialization failure.
_CONFLICT_STATES = frozenset({"40P01", "40001"})
#: Most works one shared transaction carries.
MAX_GROUP = 256
#: Seconds a leader waits for its group to fill when the last group had company.
COMMIT_DELAY = 0.001

T = TypeVar("T")

#: Key in ``Connection.info`` of the values noted by the works of the current transaction.
_NOTED = "web2chat.noted"


def is_conflict(error: BaseException) -> bool:
    """Whether ``error`` is a transaction losing a race to another (a deadlock, or a serialization failure):
    nothing of it was applied and running it again may succeed."""
    state = getattr(getattr(error, "orig", None), "sqlstate", None) or getattr(error, "sqlstate", None)
    return state in _CONFLICT_STATES


def note(conn: Connection, topic: str, value: Any) -> None:
    """Hand ``value`` to the handler of ``topic`` once the transaction of ``conn`` has committed."""
    noted: dict[str, list[Any]] | None = conn.info.get(_NOTED)
    if noted is None:
        raise RuntimeError(f"note({topic!r}) outside a unit of work: run the write through UnitOfWork")
    noted.setdefault(topic, []).append(value)


class HandOns:
    """The handler of each topic noted in transactions (shared by the units of work of one store)."""

    def __init__(self) -> None:
        self._handlers: dict[str, list[Callable[[list[Any]], None]]] = defaultdict(list)

    def register(self, topic: str, handle: Callable[[list[Any]], None]) -> None:
        """Call ``handle(values)`` after each commit that noted values under ``topic``."""
        self._handlers[topic].append(handle)

    def run(self, noted: dict[str, list[Any]]) -> None:
        """Hand on what one committed transaction noted; failures are logged, never raised."""
        for topic, values in noted.items():
            if not values:
                continue
            for handle in self._handlers.get(topic, ()):
                try:
                    handle(values)
                except Exception:
                    log.warning("could not hand on %s after commit: %r; the sweeper will", topic, values,
                                exc_info=True)


class _RunAgain(Exception):
    """A work of the group raised: the group's transaction rolls back and each work runs again."""


class _Waiting(Generic[T]):
    """One caller's work and, once its group has committed, its outcome."""

    __slots__ = ("done", "durable", "error", "fn", "future", "result", "wake")

    def __init__(self, fn: Callable[[Connection], T], *, durable: bool,
                 future: asyncio.Future[T] | None = None) -> None:
        self.fn = fn
        self.durable = durable
        self.future = future
        self.wake = threading.Event() if future is None else None
        self.done = False
        self.result: T | None = None
        self.error: BaseException | None = None


class UnitOfWork:
    """Runs writes in transactions, grouped (``grouped``) or each in its own, and hands on after commit."""

    def __init__(
        self,
        engine: Engine,
        *,
        grouped: bool,
        hand_ons: HandOns | None = None,
        max_group: int = MAX_GROUP,
        commit_delay: float = COMMIT_DELAY,
    ) -> None:
        self._engine = engine
        self.grouped = grouped
        self.hand_ons = hand_ons if hand_ons is not None else HandOns()
        self._max_group = max_group
        self._commit_delay = commit_delay
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)  # a leader waiting for its group to fill
        self._work_for_committer = threading.Condition(self._lock)
        self._expecting = 0
        self._last_group = 1
        self._waiting: list[_Waiting[Any]] = []
        self._leading = False
        self._inside = threading.local()  # set while this thread runs a work: a nested run() would wait forever
        self._committer: threading.Thread | None = None
        self._stopping = False
        #: Commits made, and works committed (for benchmarks and tests).
        self.commits = 0
        self.committed = 0

    @property
    def pending(self) -> int:
        """How many works wait for the next group."""
        with self._lock:
            return len(self._waiting)

    # -- callers ---------------------------------------------------------------------------------

    def run(self, fn: Callable[[Connection], T], *, durable: bool = True) -> T:
        """Run ``fn(conn)`` in a transaction; return its result once that transaction committed."""
        if getattr(self._inside, "active", False):
            raise RuntimeError("UnitOfWork.run called from inside a work (it would wait for itself)")
        if not self.grouped:
            me = _Waiting(fn, durable=durable)
            self._commit([me])
            if me.error is not None:
                raise me.error
            return me.result  # type: ignore[return-value]
        me = _Waiting(fn, durable=durable)
        with self._lock:
            self._add(me)
        while True:
            with self._lock:
                if me.done:
                    break
                group = None if self._leading else self._take_lead()
                if group is None:
                    assert me.wake is not None
                    me.wake.clear()
            if group is None:
                assert me.wake is not None
                me.wake.wait()
                continue
            self._lead(group)
        if me.error is not None:
            raise me.error
        return me.result  # type: ignore[return-value]  # set by the group's commit

    def run_each(self, fns: Sequence[Callable[[Connection], T]], *, durable: bool = True) -> list[T | Exception]:
        """Run several works at once (one caller's batch: a job's landings); each one's result, or the
        error it raised, in order, once committed. They share a group (with whatever else waits), so
        one that raises rolls back alone; a failed transaction or commit is every work's error."""
        if not fns:
            return []
        if len(fns) == 1 or not self.grouped:
            return [self._outcome(self.run, fn, durable) for fn in fns]
        if getattr(self._inside, "active", False):
            raise RuntimeError("UnitOfWork.run_each called from inside a work (it would wait for itself)")
        mine = [_Waiting(fn, durable=durable) for fn in fns]
        with self._lock:
            for waiting in mine:
                self._add(waiting)
        while True:
            with self._lock:
                pending = next((w for w in mine if not w.done), None)
                if pending is None:
                    break
                group = None if self._leading else self._take_lead()
                if group is None:
                    assert pending.wake is not None
                    pending.wake.clear()
            if group is None:
                assert pending.wake is not None
                pending.wake.wait()
                continue
            self._lead(group)
        return [w.error if isinstance(w.error, Exception) else w.result for w in mine]  # type: ignore[misc]

    @staticmethod
    def _outcome(run: Callable[..., T], fn: Callable[[Connection], T], durable: bool) -> T | Exception:
        try:
            return run(fn, durable=durable)
        except Exception as exc:  # noqa: BLE001 - handed back to the caller, per work
            return exc

    def submit_async(self, fn: Callable[[Connection], T], *, durable: bool = True) -> asyncio.Future[T]:
        """Like :meth:`run`, for a coroutine: the unit's committer thread (:meth:`start`) leads the
        group, and each event loop is woken once per group to answer all of its callers."""
        if not self.grouped or self._committer is None:
            raise RuntimeError("submit_async needs a grouped unit of work whose committer thread was started")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        with self._lock:
            if self._stopping:
                raise RuntimeError("the unit of work is stopping")
            self._add(_Waiting(fn, durable=durable, future=future))
        return future

    def start(self) -> None:
        """Start the committer thread that leads groups of works submitted from coroutines."""
        if self._committer is None:
            self._committer = threading.Thread(target=self._commit_forever, name="gateway-commit", daemon=True)
            self._committer.start()

    def stop(self) -> None:
        """Commit what was submitted, then stop the committer thread."""
        if self._committer is None:
            return
        with self._lock:
            self._stopping = True
            self._work_for_committer.notify()
        self._committer.join()
        self._committer = None
        self._stopping = False

    # -- group formation (called holding the lock) -----------------------------------------------

    def _add(self, me: _Waiting[Any]) -> None:
        self._waiting.append(me)
        if self._expecting and len(self._waiting) >= self._expecting:
            self._arrived.notify()
        if not self._leading:
            self._work_for_committer.notify()

    def _take_lead(self) -> list[_Waiting[Any]]:
        self._leading = True
        self._await_group()
        group, self._waiting = self._waiting[: self._max_group], self._waiting[self._max_group:]
        self._last_group = len(group)
        return group

    def _await_group(self) -> None:
        """Under load (the last group had company), wait up to ``commit_delay`` for as many works as it had."""
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

    def _lead(self, group: list[_Waiting[Any]]) -> None:
        try:
            self._commit(group)
        finally:
            with self._lock:
                self._leading = False
                successor = self._waiting[0] if self._waiting else None
                if successor is not None:
                    self._work_for_committer.notify()
            if successor is not None and successor.wake is not None:
                successor.wake.set()

    def _commit_forever(self) -> None:
        while True:
            with self._lock:
                while not self._waiting or self._leading:
                    if self._stopping and not self._waiting and not self._leading:
                        return
                    self._work_for_committer.wait(0.5 if self._stopping else None)
                group = self._take_lead()
            self._lead(group)

    # -- committing ------------------------------------------------------------------------------

    def _commit(self, group: list[_Waiting[Any]]) -> None:
        noted: dict[str, list[Any]] = {}
        started = time.perf_counter()
        try:
            for attempt in range(CONFLICT_RETRIES + 1):
                noted = {}
                for waiting in group:  # nothing of an earlier attempt is kept
                    waiting.result, waiting.error = None, None
                try:
                    if not self._all_at_once(group, noted):
                        noted = {}
                        self._one_by_one(group, noted)
                    break
                except Exception as exc:
                    if attempt == CONFLICT_RETRIES or not is_conflict(exc):
                        raise
                    # Another transaction won a lock race (PostgreSQL chose this one to break a deadlock): the
                    # transaction left nothing, so it runs again, a little later, as works may (see the module).
                    log.info("transaction conflict (%s); running it again", type(exc).__name__)
                    time.sleep(random.uniform(0.005, 0.05) * (attempt + 1))
            self.commits += 1
            self.committed += sum(1 for w in group if w.error is None)
            COMMIT_GROUP.observe(len(group))
            COMMIT_SECONDS.observe(time.perf_counter() - started)
        except BaseException as exc:  # the transaction failed: nothing of the group is applied
            noted = {}
            for waiting in group:
                waiting.result, waiting.error = None, exc
            if not isinstance(exc, Exception):
                raise
        finally:
            if noted:
                self.hand_ons.run(noted)
            self._settle(group)

    @contextmanager
    def _transaction(self, group: list[_Waiting[Any]], noted: dict[str, list[Any]]) -> Iterator[Connection]:
        durable = any(w.durable for w in group)
        with self._engine.connect() as conn:
            sqlite = conn.dialect.name == "sqlite"
            raw: Any = conn.connection.dbapi_connection
            if not durable and sqlite:
                raw.execute("PRAGMA synchronous=NORMAL")  # only outside a transaction, so before BEGIN
            try:
                with conn.begin():
                    if not durable and not sqlite:
                        conn.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")
                    conn.info[_NOTED] = noted
                    self._inside.active = True
                    try:
                        yield conn
                    finally:
                        self._inside.active = False
                        conn.info.pop(_NOTED, None)
            finally:
                if not durable and sqlite:
                    raw.execute("PRAGMA synchronous=FULL")

    def _all_at_once(self, group: list[_Waiting[Any]], noted: dict[str, list[Any]]) -> bool:
        """The common case, without savepoints: every work succeeds and the group commits. False
        (nothing applied) when a work of a group of several raises; :meth:`_one_by_one` follows."""
        try:
            with self._transaction(group, noted) as conn:
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

    def _one_by_one(self, group: list[_Waiting[Any]], noted: dict[str, list[Any]]) -> None:
        """Each work in a savepoint of one transaction: one that raises rolls back alone, with its notes."""
        with self._transaction(group, noted) as conn:
            for waiting in group:
                marks = {topic: len(values) for topic, values in noted.items()}
                try:
                    with conn.begin_nested():
                        waiting.result = waiting.fn(conn)
                except Exception as exc:  # noqa: BLE001 - raised in its caller; only this work rolls back
                    waiting.error = exc
                    for topic, values in noted.items():
                        del values[marks.get(topic, 0):]

    def _settle(self, group: list[_Waiting[Any]]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[_Waiting[Any]]] = defaultdict(list)
        with self._lock:  # a follower checks ``done`` and clears its ``wake`` under this lock
            for waiting in group:
                waiting.done = True
                if waiting.wake is not None:
                    waiting.wake.set()
                elif waiting.future is not None:
                    by_loop[waiting.future.get_loop()].append(waiting)
        for loop, settled in by_loop.items():
            try:
                loop.call_soon_threadsafe(_settle_futures, settled)
            except RuntimeError:  # that loop is closed: nobody waits any more
                continue


def _settle_futures(settled: list[_Waiting[Any]]) -> None:
    for waiting in settled:
        future = waiting.future
        if future is None or future.done():
            continue
        if waiting.error is not None:
            future.set_exception(waiting.error)
        else:
            future.set_result(waiting.result)
