"""The store's shared machinery: engines, tables, migrations, the unit of work, the SQLite speed path.

Each feature keeps its own queries beside its rules (``outbound.outbox``, ``outbound.event_store``,
``outbound.unseen_check``, ``inbound.inbox``, ``inbound.webhook``, ``gateway.messenger.store``);
this package imports no feature.
"""

from __future__ import annotations

from gateway.store.db import Database, is_sqlite, make_engine, migrate, pending_migrations
from gateway.store.tickets import TicketStore
from gateway.store.uow import UnitOfWork, note

__all__ = [
    "Database",
    "TicketStore",
    "UnitOfWork",
    "is_sqlite",
    "make_engine",
    "migrate",
    "note",
    "pending_migrations",
]
