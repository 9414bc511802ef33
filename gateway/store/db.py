"""Engines and migrations: the only place that knows which database backend is in use."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine

__all__ = ["SerialConnection", "is_sqlite", "lazy_commit", "make_engine", "migrate", "pending_migrations"]

#: Seconds a SQLite writer waits for another writer before giving up.
SQLITE_BUSY_TIMEOUT = 30
#: Seconds after which a pooled PostgreSQL connection is replaced.
POOL_RECYCLE_SECONDS = 600
_MIGRATIONS = Path(__file__).parent / "migrations"


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
            # Take the write lock up front: no deadlock-prone lock upgrades between writers.
            conn.connection.dbapi_connection.begin_immediate()

        return engine
    # No pre-ping: it costs a round trip per checkout. A connection dropped by a database
    # restart fails one operation (the job is retried, the API answers 503) and is replaced.
    return create_engine(url, pool_recycle=POOL_RECYCLE_SECONDS, **kwargs)


@contextmanager
def lazy_commit(engine: Engine) -> Iterator[Connection]:
    """A transaction whose commit does not wait for the disk: atomic, and durable once the next
    ordinary commit (or a checkpoint) syncs; lost only if the machine itself goes down first.

    For bookkeeping that is safe to redo, such as claiming an email or recording that it was
    sent (losing that record re-sends the email, with the same Message-ID). Never for events
    or inbound messages. SQLite: ``synchronous=NORMAL`` for this transaction (WAL mode);
    PostgreSQL: ``SET LOCAL synchronous_commit TO OFF``.
    """
    if not is_sqlite(engine):
        with engine.begin() as conn:
            conn.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")
            yield conn
        return
    with engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        assert raw is not None
        raw.execute("PRAGMA synchronous=NORMAL")  # only outside a transaction, so before BEGIN
        try:
            with conn.begin():
                yield conn
        finally:
            raw.execute("PRAGMA synchronous=FULL")


def _config(connection: Any) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def migrate(engine: Engine) -> None:
    """Bring the database to the newest schema (idempotent)."""
    with engine.begin() as connection:
        command.upgrade(_config(connection), "heads")


def pending_migrations(engine: Engine) -> list[str]:
    """Revisions not yet applied to the database, oldest first."""
    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_heads()
        script = ScriptDirectory.from_config(_config(connection))
        pending = [rev.revision for rev in script.iterate_revisions("heads", current or "base")]
    return list(reversed(pending))


