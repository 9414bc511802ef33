"""The migrations build exactly the schema the code declares (tables, columns, indexes)."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from gateway.store import make_engine, pending_migrations
from gateway.store.tables import metadata


def test_migrated_database_matches_the_declared_tables(database_url: str) -> None:
    """After ``migrate`` (the fixture ran it) nothing is pending and autogenerate finds no difference."""
    engine = make_engine(database_url)
    assert [] == pending_migrations(engine)
    with engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), metadata)
    assert [] == differences
