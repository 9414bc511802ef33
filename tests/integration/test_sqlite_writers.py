"""SQLite writers of one process queue on one lock: each gets in as soon as the previous one
ends (commit, rollback or a dropped connection), and another process still gets SQLite's own
"database is locked" after the busy timeout."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import insert, select
from sqlalchemy.engine import Engine

from gateway.store import db as store_db
from gateway.store import make_engine, migrate
from gateway.store.tables import kv


def engine_at(tmp_path: Path) -> Engine:
    engine = make_engine(f"sqlite:///{tmp_path / 'gateway.sqlite3'}")
    migrate(engine)
    return engine


def test_concurrent_writers_all_commit(tmp_path: Path) -> None:
    """Eight threads writing at once from two engines on the same file: every write lands, none
    is refused as locked."""
    engines = [engine_at(tmp_path), make_engine(f"sqlite:///{tmp_path / 'gateway.sqlite3'}")]
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            for i in range(25):
                with engines[n % 2].begin() as conn:
                    conn.execute(insert(kv).values(key=f"{n}-{i}", value="v"))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert [] == errors
    with engines[0].connect() as conn:
        assert 200 == len(conn.execute(select(kv.c.key)).all())


def test_a_writer_gets_in_right_after_the_previous_one_ends(tmp_path: Path) -> None:
    """A writer waiting behind another thread's transaction starts as soon as that one commits
    (no sleeping in SQLite's busy handler, which would wait up to 100 ms per try)."""
    engine = engine_at(tmp_path)
    holding, release = threading.Event(), threading.Event()
    committed_at: list[float] = []

    def hold() -> None:
        with engine.begin() as conn:
            conn.execute(insert(kv).values(key="first", value="v"))
            holding.set()
            release.wait(10)
        committed_at.append(time.monotonic())

    first = threading.Thread(target=hold)
    first.start()
    assert holding.wait(10)
    threading.Timer(0.235, release.set).start()
    with engine.begin() as conn:
        started_at = time.monotonic()
        conn.execute(insert(kv).values(key="second", value="v"))
    first.join(10)
    assert committed_at and started_at >= committed_at[0]
    assert started_at - committed_at[0] < 0.05, "the waiting writer slept instead of being woken"


@pytest.mark.parametrize("end", ["rollback", "close"])
def test_a_transaction_that_ends_without_commit_lets_the_next_writer_in(tmp_path: Path, end: str) -> None:
    """Rolled back, or its connection closed mid-transaction: the lock is free again."""
    engine = engine_at(tmp_path)
    conn = engine.connect()
    transaction = conn.begin()
    conn.execute(insert(kv).values(key="undone", value="v"))
    if end == "rollback":
        transaction.rollback()
    conn.close()
    with engine.begin() as other:
        other.execute(insert(kv).values(key="next", value="v"))
    with engine.connect() as reader:
        assert ["next"] == list(reader.execute(select(kv.c.key)).scalars())


def test_another_process_holding_the_database_gets_the_busy_error_and_frees_the_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process (here a plain sqlite3 connection) holds the write lock past the busy
    timeout: our writer fails with "database is locked", and the next one gets in once it is gone."""
    monkeypatch.setattr(store_db, "SQLITE_BUSY_TIMEOUT", 0.2)
    engine = engine_at(tmp_path)
    outsider = sqlite3.connect(tmp_path / "gateway.sqlite3", isolation_level=None)
    outsider.execute("BEGIN IMMEDIATE")
    with pytest.raises(Exception, match="database is locked"), engine.begin() as conn:
        conn.execute(insert(kv).values(key="refused", value="v"))
    outsider.execute("ROLLBACK")
    outsider.close()
    with engine.begin() as conn:
        conn.execute(insert(kv).values(key="accepted", value="v"))
