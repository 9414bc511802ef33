"""Engines and migrations: the only place that knows which database backend is in use."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, PendingRollbackError

from gateway.store.uow import HandOns, UnitOfWork

if TYPE_CHECKING:
    from alembic.config import Config

T = TypeVar("T")

__all__ = ["Database", "SerialConnection", "is_lost_store", "is_sqlite", "make_engine", "migrate", "pending_migrations"]

#: Seconds a SQLite writer waits for another writer before giving up.
SQLITE_BUSY_TIMEOUT = 30
#: Seconds after which a pooled PostgreSQL connection is replaced.
POOL_RECYCLE_SECONDS = 600
_MIGRATIONS = Path(__file__).parent / "migrations"
#: Execution option marking connections that only read (see :meth:`Database.read`).
_READ_ONLY = "web2chat_read_only"


#: PostgreSQL SQLSTATEs of a store that is gone or cannot serve for now (besides class 08, connection
#: exceptions, and class 53, insufficient resources): shut down, crashed, starting, a statement cancelled.
_LOST_STATES = frozenset({"57P01", "57P02", "57P03", "57014"})
#: SQLite result codes of a database that cannot be used for now (locked, unopenable, I/O or disk full).
_SQLITE_LOST = frozenset({"SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_CANTOPEN", "SQLITE_IOERR", "SQLITE_FULL"})


def is_lost_store(error: BaseException) -> bool:
    """Whether ``error`` says the store (or the connection to it) is gone or cannot serve for now, not that a
    statement was wrong: a bug (no such table, a constraint, a bad value) is never an outage."""
    if isinstance(error, PendingRollbackError):  # a connection that died inside its transaction
        return True
    driver_error = error.orig if isinstance(error, DBAPIError) else error
    if isinstance(error, DBAPIError) and (error.connection_invalidated or isinstance(error, InterfaceError)):
        return True
    if isinstance(driver_error, sqlite3.Error):  # through SQLAlchemy, or raw from the SQLite speed path
        return getattr(driver_error, "sqlite_errorname", None) in _SQLITE_LOST
    if not isinstance(error, OperationalError):
        return False
    state = getattr(driver_error, "sqlstate", None)
    if state is None:  # psycopg: the connection could not be made or was lost (no server answer to read)
        return True
    return state[:2] in ("08", "53") or state in _LOST_STATES


def is_sqlite(engine: Engine) -> bool:
    """Whether ``engine`` talks to SQLite (embedded mode)."""
    return engine.dialect.name == "sqlite"


class SerialConnection(sqlite3.Connection):
    """A SQLite connection whose write transactions queue on a lock shared by every connection
    of this process to the same database file.

    SQLite lets one writer in at a time; one that finds the database locked sleeps in SQLite's
    busy handler (1, 2, 5, 10 ... 100 ms) and is overtaken by others meanwhile, so under load a
    writer could wait a second for a lock that was free most of that time. Threads of one
    process instead queue on a lock that wakes the next one as soon as the holder's commit or
    rollback has finished; SQLite's own busy timeout still arbitrates between processes.
    """

    write_lock: threading.Lock
    _holding = False

    def begin_immediate(self) -> None:
        """``BEGIN IMMEDIATE``: take the write lock (after this process's other writers)."""
        if not self._holding:
            if not self.write_lock.acquire(timeout=SQLITE_BUSY_TIMEOUT):
                raise sqlite3.OperationalError(
                    f"database is locked: another thread of this process kept writing for {SQLITE_BUSY_TIMEOUT} s"
                )
            self._holding = True
        try:
            self.execute("BEGIN IMMEDIATE")
        except BaseException:
            self._release()
            raise

    def _release(self) -> None:
        if self._holding:
            self._holding = False
            self.write_lock.release()

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            if not self.in_transaction:
                self._release()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self._release()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._release()


_WRITE_LOCKS: dict[str, threading.Lock] = {}
_WRITE_LOCKS_GUARD = threading.Lock()


def _write_lock(database: str) -> threading.Lock:
    """The lock the writers of this process to ``database`` (a file path) queue on."""
    if database in ("", ":memory:"):
        return threading.Lock()  # an in-memory database belongs to its one engine
    with _WRITE_LOCKS_GUARD:
        return _WRITE_LOCKS.setdefault(os.path.realpath(database), threading.Lock())


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url``: SQLite in WAL mode with full fsync, or PostgreSQL through psycopg 3."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    if url.startswith("sqlite"):
        memory = url in ("sqlite://", "sqlite:///:memory:")
        options: dict[str, Any] = {"connect_args": {
            "timeout": SQLITE_BUSY_TIMEOUT, "check_same_thread": False, "factory": SerialConnection,
        }}
        if memory:
            from sqlalchemy.pool import StaticPool

            options["poolclass"] = StaticPool
        engine = create_engine(url, **options, **kwargs)
        write_lock = _write_lock(engine.url.database or "")

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            # Let SQLAlchemy, not pysqlite, open transactions, so BEGIN IMMEDIATE works.
            dbapi_connection.isolation_level = None
            dbapi_connection.write_lock = write_lock
            cursor = dbapi_connection.cursor()
            if not memory:
                cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            dbapi_connection = conn.connection.dbapi_connection
            if conn.get_execution_options().get(_READ_ONLY):
                # A reader: a snapshot of the last commit (WAL), beside the writer, never queued behind it.
                dbapi_connection.execute("BEGIN")
            else:
                # A writer takes the write lock up front: no deadlock-prone lock upgrades between writers.
                dbapi_connection.begin_immediate()

        return engine
    # Pre-ping: a pooled connection that died with a database restart (or was terminated) is
    # replaced at checkout, before anything ran on it, so the request using it succeeds. It costs
    # one round trip per checkout: within the noise of a loopback timeit (checkout + SELECT 1,
    # best of 5 x 2000: 175-182 us with, 176-197 us without; at most ~50 us on a busy machine).
    # A connection that dies mid-transaction still fails that one operation (503, job retried).
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, pool_recycle=POOL_RECYCLE_SECONDS, **kwargs)


# Alembic is imported where it is used: it takes longer to import than the rest of the store
# (the CLI's listing commands start without it).


def _config(connection: Any) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def migrate(engine: Engine) -> None:
    """Bring the database to the newest schema (idempotent)."""
    from alembic import command

    with engine.begin() as connection:
        command.upgrade(_config(connection), "heads")


def pending_migrations(engine: Engine) -> list[str]:
    """Revisions not yet applied to the database, oldest first."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_heads()
        script = ScriptDirectory.from_config(_config(connection))
        pending = [rev.revision for rev in script.iterate_revisions("heads", current or "base")]
    return list(reversed(pending))




class Database:
    """One store: its engine, a reader that never waits for writers, and the units of work that write.

    - :meth:`read` for queries: on SQLite a deferred transaction, a snapshot of the last commit
      read beside the writer (WAL), never queued behind the process's write lock.
    - :meth:`write` (:attr:`uow`) for every change: grouped on SQLite, where each commit waits for
      an fsync and writers take turns anyway; one transaction per work on PostgreSQL.
    - :attr:`mail` for raw inbound mail from the SMTP server: always grouped (plain inserts of
      independent rows, which no lock order can deadlock), with its own committer thread.
    - :attr:`hand_ons`: what each topic noted in a transaction becomes after its commit.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sqlite = is_sqlite(engine)
        #: An in-memory SQLite database: only this process's connections see it.
        self.in_memory = self.sqlite and engine.url.database in (None, "", ":memory:")
        self._reader = engine.execution_options(**{_READ_ONLY: True})
        self.hand_ons = HandOns()
        self.uow = UnitOfWork(engine, grouped=self.sqlite, hand_ons=self.hand_ons)
        self.mail = UnitOfWork(engine, grouped=True, hand_ons=self.hand_ons)

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> Database:
        """A database for ``url`` (see :func:`make_engine`)."""
        return cls(make_engine(url, **kwargs))

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection for reading (its transaction is rolled back at the end: it changes nothing)."""
        with self._reader.connect() as conn:
            yield conn

    def write(self, fn: Callable[[Connection], T], *, durable: bool = True) -> T:
        """Run ``fn(conn)`` in the unit of work; its result once committed (see :class:`UnitOfWork`)."""
        return self.uow.run(fn, durable=durable)

    def after_commit(self, topic: str, handle: Callable[[list[Any]], None]) -> None:
        """Call ``handle(values)`` after each commit that noted values under ``topic``."""
        self.hand_ons.register(topic, handle)

    def dispose(self) -> None:
        """Close the pooled connections."""
        self.engine.dispose()
