"""Small values the gateway generates for itself on first start and keeps in the store."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from gateway.store.db import Database
from gateway.store.tables import kv

__all__ = ["get_or_create"]


def get_or_create(db: Database, key: str, make: Callable[[], str]) -> str:
    """The value under ``key``; on first use store ``make()`` (the first writer wins a race)."""
    with db.read() as conn:
        value = conn.execute(select(kv.c.value).where(kv.c.key == key)).scalar()
    if value is not None:
        return str(value)
    try:
        db.write(lambda conn: conn.execute(insert(kv).values(key=key, value=make())))
    except IntegrityError:
        pass  # another process stored it first: read theirs
    with db.read() as conn:
        return str(conn.execute(select(kv.c.value).where(kv.c.key == key)).scalar_one())
