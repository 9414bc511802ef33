"""The store: the gateway's source of truth (SQLite by default, PostgreSQL at scale)."""

from __future__ import annotations

from gateway.store.db import is_sqlite, make_engine, migrate, pending_migrations
from gateway.store.event_tx import EventTx
from gateway.store.inbound import InboundStatus, InboundStore, RawMessage, StoredInbound
from gateway.store.outbox import OutboxDraft, OutboxStore
from gateway.store.tickets import Applied, TicketStore

__all__ = [
    "Applied",
    "EventTx",
    "InboundStatus",
    "InboundStore",
    "OutboxDraft",
    "OutboxStore",
    "RawMessage",
    "StoredInbound",
    "TicketStore",
    "is_sqlite",
    "make_engine",
    "migrate",
    "pending_migrations",
]
