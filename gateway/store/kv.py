"""Small values the gateway generates for itself on first start and keeps in the store."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import insert, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from gateway.store.tables import kv

__all__ = ["get_or_create"]


def get_or_create(engine: Engine, key: str, make: Callable[[], str]) -> str:
    """The value under ``key``; on first use store ``make()`` (the first writer wins a race)."""
    with engine.connect() as conn:
        value = conn.execute(select(kv.c.value).where(kv.c.key == key)).scalar()
    if value is not None:
        return str(value)
    try:
        with engine.begin() as conn:
            conn.execute(insert(kv).values(key=key, value=make()))
    except IntegrityError:
        pass
    with engine.connect() as conn:
        return str(conn.execute(select(kv.c.value).where(kv.c.key == key)).scalar_one())
