"""A job stopped by a store outage is logged as one line, without a traceback; a bug still gets its traceback."""

from __future__ import annotations

import logging
from typing import Any

import dramatiq
import pytest
from sqlalchemy.exc import OperationalError

from gateway.broker import OUTBOUND_QUEUE, make_worker
from gateway.jobs import Jobs


def test_a_store_outage_is_one_warning_and_a_bug_keeps_its_traceback(
    stub_broker: dramatiq.Broker, caplog: pytest.LogCaptureFixture
) -> None:
    jobs = Jobs(stub_broker)

    def outage(pk: int) -> None:
        raise OperationalError("SELECT 1", {}, ConnectionError("connection refused"))

    def bug(pk: int) -> None:
        raise ValueError("a bug")

    jobs.declare("outage_job", outage, queue=OUTBOUND_QUEUE)
    jobs.declare("bug_job", bug, queue=OUTBOUND_QUEUE)
    with caplog.at_level(logging.WARNING):
        jobs.send("outage_job", 7)
        jobs.send("bug_job", 8)
        worker = make_worker(stub_broker, threads=1)
        worker.start()
        try:
            stub_broker.join(OUTBOUND_QUEUE, timeout=20_000, fail_fast=False)  # type: ignore[attr-defined]
            worker.join()
        finally:
            worker.stop()
    outage_lines = [r for r in caplog.records if "outage_job" in r.getMessage()]
    assert 1 == len(outage_lines), [r.getMessage() for r in outage_lines]
    line = outage_lines[0]
    assert (logging.WARNING, None) == (line.levelno, line.exc_info)
    assert "outage_job(7) stopped: the store is unavailable (OperationalError: " in line.getMessage()
    bug_lines = [r for r in caplog.records if "bug_job" in r.getMessage() and r.levelno >= logging.ERROR]
    assert bug_lines and bug_lines[0].exc_info is not None


def test_an_outage_is_told_from_a_bug(tmp_path: Any) -> None:
    """A locked SQLite database or a refused PostgreSQL connection is an outage; a missing table is a bug."""
    import sqlite3

    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import OperationalError as SAOperationalError

    from gateway.store.db import is_lost_store

    path = tmp_path / "db.sqlite3"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN IMMEDIATE")
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    with pytest.raises(sqlite3.OperationalError) as locked:
        other.execute("INSERT INTO t VALUES (1)")
    assert is_lost_store(locked.value)
    holder.rollback()
    engine = create_engine(f"sqlite:///{path}")
    with engine.connect() as conn, pytest.raises(SAOperationalError) as missing:
        conn.execute(text("SELECT * FROM no_such_table"))
    assert not is_lost_store(missing.value)
    refused = create_engine("postgresql+psycopg://postgres@127.0.0.1:9/test", connect_args={"connect_timeout": 2})
    with pytest.raises(SAOperationalError) as down:
        refused.connect()
    assert is_lost_store(down.value)
    assert not is_lost_store(ValueError("a bug"))
