"""The migrations build exactly the schema the code declares (tables, columns, indexes)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import select

from gateway.store import make_engine, migrate, pending_migrations
from gateway.store.db import _config
from gateway.store.tables import metadata, suppressions


def test_migrated_database_matches_the_declared_tables(database_url: str) -> None:
    """After ``migrate`` (the fixture ran it) nothing is pending and autogenerate finds no difference."""
    engine = make_engine(database_url)
    assert [] == pending_migrations(engine)
    with engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), metadata)
    assert [] == differences


def test_upgrade_rewrites_datetimes_earlier_versions_stored_with_an_offset(tmp_path: Path) -> None:
    """A SQLite database from before 0003 holding "... +00:00" datetimes reads the same after the
    upgrade, stored in the one text format (so SQL compares due times exactly)."""
    engine = make_engine(f"sqlite:///{tmp_path / 'old.sqlite3'}")
    with engine.begin() as conn:
        for head in ("0002_inbound", "0002_messenger"):
            command.upgrade(_config(conn), head)
        conn.exec_driver_sql(
            "INSERT INTO suppressions (address, reason, created_at) VALUES "
            "('a@example.com', 'x', '2026-11-26 12:00:22.500000+00:00'),"
            " ('b@example.com', 'x', '2026-11-26 12:00:00+00:00')"
        )
    migrate(engine)
    with engine.connect() as conn:
        stored = conn.exec_driver_sql("SELECT created_at FROM suppressions ORDER BY address").scalars().all()
        read = conn.execute(select(suppressions.c.created_at).order_by(suppressions.c.address)).scalars().all()
    assert ["2026-11-26 12:00:22.500000", "2026-11-26 12:00:00.000000"] == stored
    assert [datetime(2026, 11, 26, 12, 0, 22, 500000, tzinfo=UTC), datetime(2026, 11, 26, 12, 0, tzinfo=UTC)] == read
