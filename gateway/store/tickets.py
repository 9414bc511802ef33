"""Reads of tickets, their customers and their threads: shared by every feature (writes belong to
``outbound.event_store``, ``inbound.inbox`` and the Messenger's seen receipts)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, select

from gateway.models import Entry, Ticket
from gateway.store.db import Database
from gateway.store.records import entry_from_row, ticket_from_row
from gateway.store.tables import customers, entries, tickets

__all__ = ["TicketStore", "ticket_query"]


def ticket_query() -> Any:
    """``SELECT`` of tickets joined with their customers, as :func:`ticket_from_row` reads them."""
    columns = (
        tickets,
        customers.c.external_id.label("customer_id"),
        customers.c.email,
        customers.c.name,
        customers.c.locale,
        customers.c.time_zone,
    )
    return select(*columns).join(customers, customers.c.pk == tickets.c.customer_pk)


_BY_ID = ticket_query().where(tickets.c.external_id == bindparam("ticket_id"))
_BY_KEY = ticket_query().where(tickets.c.pk == bindparam("key"))


class TicketStore:
    """Reads tickets and threads; never waits for a writer (see :meth:`Database.read`)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def get(self, ticket_id: str) -> Ticket | None:
        """The ticket the help desk calls ``ticket_id``, or None."""
        with self._db.read() as conn:
            row = conn.execute(_BY_ID, {"ticket_id": ticket_id}).first()
        return ticket_from_row(row) if row else None

    def get_by_key(self, key: int) -> Ticket | None:
        """The ticket with the gateway's own number ``key``, or None."""
        with self._db.read() as conn:
            row = conn.execute(_BY_KEY, {"key": key}).first()
        return ticket_from_row(row) if row else None

    def thread(self, ticket_key: int) -> list[Entry]:
        """The ticket's entries, oldest first."""
        with self._db.read() as conn:
            rows = conn.execute(
                select(entries).where(entries.c.ticket_pk == ticket_key).order_by(entries.c.pk)
            ).all()
        return [entry_from_row(r) for r in rows]
