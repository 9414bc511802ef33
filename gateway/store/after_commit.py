"""Work handed on once a transaction has committed: values noted inside it, handled after it.

Code inside a transaction calls :func:`note` (``note(conn, "queued_emails", pk)``).
:func:`after_commit` hooks an engine so that, once such a transaction has committed and its
connection is back in the pool, ``handle(values)`` runs once with everything noted under that
topic, in the order noted. A rollback forgets the values; rolling back to a savepoint forgets
those noted since it. A ``handle`` that raises is logged: what it hands on is committed, and
whoever sweeps the store picks it up.

One transaction, one call: the events of a group commit (``gateway.store.group_commit``) share
a transaction, so their emails reach the broker as one message.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, event
from sqlalchemy.engine import Engine

__all__ = ["after_commit", "note"]

log = logging.getLogger(__name__)


def _keys(topic: str) -> tuple[str, str, str]:
    return f"web2chat.{topic}.pending", f"web2chat.{topic}.marks", f"web2chat.{topic}.committed"


def note(conn: Connection, topic: str, value: Any) -> None:
    """Remember ``value`` under ``topic`` until the transaction of ``conn`` ends."""
    conn.info.setdefault(_keys(topic)[0], []).append(value)


def after_commit(engine: Engine, topic: str, handle: Callable[[list[Any]], None]) -> None:
    """Call ``handle(values)`` after each transaction of ``engine`` that noted values under ``topic``."""
    pending, marks, committed = _keys(topic)

    @event.listens_for(engine, "savepoint")
    def _savepoint(conn: Connection, _name: str) -> None:
        conn.info.setdefault(marks, []).append(len(conn.info.get(pending, ())))

    @event.listens_for(engine, "release_savepoint")
    def _released(conn: Connection, _name: str, _context: Any) -> None:
        if conn.info.get(marks):
            conn.info[marks].pop()

    @event.listens_for(engine, "rollback_savepoint")
    def _rolled_back_to(conn: Connection, _name: str, _context: Any) -> None:
        if conn.info.get(marks):
            del conn.info.get(pending, [])[conn.info[marks].pop():]

    @event.listens_for(engine, "commit")
    def _committing(conn: Connection) -> None:
        conn.info.pop(marks, None)
        values = conn.info.pop(pending, None)
        if values:
            conn.info.setdefault(committed, []).extend(values)

    @event.listens_for(engine, "rollback")
    def _rolled_back(conn: Connection) -> None:
        conn.info.pop(marks, None)
        conn.info.pop(pending, None)

    @event.listens_for(engine.pool, "checkin")
    def _returned(_dbapi_connection: Any, record: Any) -> None:
        # The pool takes a connection back after its transaction ended: the commit is durable now.
        values = record.info.pop(committed, None) if record is not None else None
        if values:
            try:
                handle(values)
            except Exception:
                log.warning("could not hand on %s after commit: %r; the sweeper will", topic, values, exc_info=True)
