"""Prebuilt statements (straight through the driver on SQLite) write and read what SQLAlchemy would."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import bindparam, insert, select

from gateway.store import make_engine, migrate
from gateway.store.sqlite import Prebuilt
from gateway.store.tables import suppressions

ADD = Prebuilt(insert(suppressions))
#: The columns these tests write.
THREE = (suppressions.c.address, suppressions.c.reason, suppressions.c.created_at)
FIND = Prebuilt(select(suppressions.c.reason).where(suppressions.c.address == bindparam("address")))


def test_a_prebuilt_insert_reads_back_through_sqlalchemy(database_url: str) -> None:
    """Values written through a prebuilt statement (an aware datetime in another zone) read back unchanged, in UTC."""
    engine = make_engine(database_url)
    moment = datetime(2026, 11, 26, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    with engine.begin() as conn:
        ADD.run(conn, {"address": "ada@example.com", "reason": "5.1.1", "created_at": moment})
        assert ("5.1.1",) == tuple(FIND.first(conn, {"address": "ada@example.com"}))
        assert FIND.first(conn, {"address": "bob@example.com"}) is None
    with engine.connect() as conn:
        row = conn.execute(select(*THREE)).one()
    assert ("ada@example.com", "5.1.1", datetime(2026, 11, 26, 12, 0, tzinfo=UTC)) == tuple(row)


def test_a_prebuilt_statement_rolls_back_with_its_transaction(database_url: str) -> None:
    """A prebuilt write belongs to the connection's transaction: a rollback takes it away."""
    engine = make_engine(database_url)
    with engine.connect() as conn:
        with conn.begin() as transaction:
            ADD.run(conn, {"address": "ada@example.com", "reason": "x", "created_at": datetime.now(UTC)})
            transaction.rollback()
        assert [] == conn.execute(select(suppressions)).all()


def test_values_written_into_the_statement_are_bound_with_the_given_ones(database_url: str) -> None:
    """A value fixed when the statement was built (a reason, a datetime) is written as SQLAlchemy
    would, beside the values given per run."""
    engine = make_engine(database_url)
    moment = datetime(2026, 11, 26, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    fixed = Prebuilt(insert(suppressions).values(reason="hard bounce", created_at=moment))
    with engine.begin() as conn:
        fixed.run(conn, {"address": "ada@example.com"})
        fixed.run(conn, {"address": "bob@example.com"})
    with engine.connect() as conn:
        rows = [tuple(r) for r in conn.execute(select(*THREE).order_by(suppressions.c.address))]
    expected_at = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    assert [("ada@example.com", "hard bounce", expected_at), ("bob@example.com", "hard bounce", expected_at)] == rows


def test_datetimes_are_stored_in_the_same_text_as_sqlalchemy_writes(tmp_path: Path) -> None:
    """On SQLite a prebuilt write stores a datetime exactly as SQLAlchemy does, so due times
    compare correctly in SQL (``next_attempt_at <= now``) at the microsecond."""
    engine = make_engine(f"sqlite:///{tmp_path / 'gateway.sqlite3'}")
    migrate(engine)
    moment = datetime(2026, 11, 26, 12, 0, 22, 500000, tzinfo=UTC)
    with engine.begin() as conn:
        ADD.run(conn, {"address": "prebuilt@example.com", "reason": "x", "created_at": moment})
        conn.execute(insert(suppressions).values(address="sqlalchemy@example.com", reason="x", created_at=moment))
        stored = conn.exec_driver_sql("SELECT address, created_at FROM suppressions ORDER BY address").all()
        due = conn.execute(select(suppressions.c.address).where(suppressions.c.created_at <= moment)).scalars()
        assert ["prebuilt@example.com", "sqlalchemy@example.com"] == sorted(due)
    assert stored[0][1] == stored[1][1] == "2026-11-26 12:00:22.500000"


def test_a_value_left_out_is_an_error_not_a_null(database_url: str) -> None:
    """Forgetting a value the statement needs raises, naming it, instead of writing NULL."""
    engine = make_engine(database_url)
    with engine.begin() as conn, pytest.raises(Exception, match="address"):
        FIND.first(conn, {})


def test_an_insert_of_many_rows_returns_each_rows_key_in_order(database_url: str) -> None:
    """Row by row through the driver on SQLite, one INSERT ... RETURNING on PostgreSQL: the same keys, in order."""
    from gateway.store.tables import webhook_deliveries

    engine = make_engine(database_url)
    migrate(engine)
    add = Prebuilt(insert(webhook_deliveries))
    now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    rows = [{"entry_pk": None, "url": f"http://desk.test/{n}", "payload": "{}", "status": "queued", "attempts": 0,
             "created_at": now, "updated_at": now, "next_attempt_at": now} for n in range(5)]
    with engine.begin() as conn:
        pks = add.insert_many(conn, rows)
        by_pk = dict(conn.execute(select(webhook_deliveries.c.pk, webhook_deliveries.c.url)).tuples().all())
    assert 5 == len(set(pks))
    assert [r["url"] for r in rows] == [by_pk[pk] for pk in pks]
