"""Tickets, their customers and their threads."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from gateway.errors import EventError
from gateway.models import Entry, EntryKind, Ticket, TicketCreated
from gateway.store.changes import ChangeKind, record_change
from gateway.store.event_tx import EventTx, apply_event
from gateway.store.outbox import OutboxDraft, insert_draft
from gateway.store.records import entry_from_row, inserted_pk, ticket_from_row
from gateway.store.tables import customers, entries, events, tickets

__all__ = ["Applied", "TicketStore"]

_TICKET_COLUMNS = (
    tickets,
    customers.c.external_id.label("customer_id"),
    customers.c.email,
    customers.c.name,
    customers.c.locale,
)


@dataclass(frozen=True)
class Applied:
    """The outcome of applying an event: the answer to give and the emails to hand on."""

    response: dict[str, Any]
    outbox_pks: tuple[int, ...]
    replayed: bool


class TicketConflict(EventError):
    """Raised when ``ticket.created`` names a ticket id that already exists under another event."""


class TicketStore:
    """Reads and writes tickets and threads; each public method is one transaction."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def _ticket_query(self) -> Any:
        return select(*_TICKET_COLUMNS).join(customers, customers.c.pk == tickets.c.customer_pk)

    def get(self, ticket_id: str) -> Ticket | None:
        """The ticket the help desk calls ``ticket_id``, or None."""
        with self._engine.connect() as conn:
            row = conn.execute(self._ticket_query().where(tickets.c.external_id == ticket_id)).first()
        return ticket_from_row(row) if row else None

    def get_by_key(self, key: int) -> Ticket | None:
        """The ticket with the gateway's own number ``key``, or None."""
        with self._engine.connect() as conn:
            row = conn.execute(self._ticket_query().where(tickets.c.pk == key)).first()
        return ticket_from_row(row) if row else None

    def thread(self, ticket_key: int) -> list[Entry]:
        """The ticket's entries, oldest first."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(entries).where(entries.c.ticket_pk == ticket_key).order_by(entries.c.pk)
            ).all()
        return [entry_from_row(r) for r in rows]

    def replayed_response(self, event_id: str) -> dict[str, Any] | None:
        """The answer given the first time ``event_id`` was applied, or None if it is new."""
        with self._engine.connect() as conn:
            value = conn.execute(select(events.c.response).where(events.c.id == event_id)).scalar()
        return json.loads(value) if value is not None else None

    def apply_ticket_created(
        self,
        event: TicketCreated,
        *,
        now: datetime,
        response: Mapping[str, Any],
        drafts: Callable[[Ticket], list[OutboxDraft]],
    ) -> Applied:
        """Record the ticket, its first entry and its emails (built by ``drafts``) atomically.

        A repeated event id changes nothing and returns the first answer.
        """
        try:
            with self._engine.begin() as conn:
                replay = self._replay(conn, event.event_id)
                if replay is not None:
                    return replay
                if conn.execute(select(tickets.c.pk).where(tickets.c.external_id == event.ticket_id)).first():
                    raise TicketConflict(f"ticket {event.ticket_id!r} already exists")
                customer_pk = self._upsert_customer(conn, event)
                ticket_pk = inserted_pk(conn.execute(
                    insert(tickets).values(
                        external_id=event.ticket_id,
                        customer_pk=customer_pk,
                        title=event.title,
                        description=event.description,
                        state=event.state.value,
                        created_by=event.created_by,
                        created_at=event.occurred_at,
                        last_activity_at=event.occurred_at,
                    )
                ))
                entry_pk = inserted_pk(conn.execute(
                    insert(entries).values(
                        ticket_pk=ticket_pk,
                        kind=EntryKind.TICKET_CREATED.value,
                        text=event.description,
                        created_at=event.occurred_at,
                        state_to=event.state.value,
                    )
                ))
                record_change(conn, ticket_key=ticket_pk, kind=ChangeKind.ENTRY, entry_key=entry_pk, now=now)
                ticket = ticket_from_row(conn.execute(self._ticket_query().where(tickets.c.pk == ticket_pk)).one())
                ticket_drafts = drafts(ticket)
                outbox_pks = tuple(insert_draft(conn, d, now=now) for d in ticket_drafts)
                if ticket_drafts:
                    self._set_root_message_id(conn, ticket_pk, ticket_drafts[0].message_id)
                self._record_event(conn, event.event_id, "ticket.created", now, response)
                return Applied(response=dict(response), outbox_pks=outbox_pks, replayed=False)
        except IntegrityError:
            # A concurrent request with the same event id won the race: answer as it did.
            first = self.replayed_response(event.event_id)
            if first is None:
                raise
            return Applied(response=first, outbox_pks=(), replayed=True)

    def apply(
        self, *, event_id: str, event_type: str, now: datetime, work: Callable[[EventTx], Mapping[str, Any]]
    ) -> Applied:
        """Apply one event to an existing ticket: ``work`` reads and changes it through an
        :class:`EventTx` and returns the answer; all of it commits together or not at all.

        A repeated event id runs nothing and returns the first answer.
        """
        response, outbox_pks, replayed = apply_event(
            self._engine, event_id=event_id, event_type=event_type, now=now, work=work
        )
        return Applied(response=json.loads(response), outbox_pks=outbox_pks, replayed=replayed)

    @staticmethod
    def _set_root_message_id(conn: Connection, ticket_key: int, message_id: str) -> None:
        """Remember the Message-ID of the ticket's first email (threading anchor)."""
        conn.execute(
            update(tickets)
            .where(tickets.c.pk == ticket_key, tickets.c.root_message_id.is_(None))
            .values(root_message_id=message_id)
        )

    def _replay(self, conn: Connection, event_id: str) -> Applied | None:
        value = conn.execute(select(events.c.response).where(events.c.id == event_id)).scalar()
        if value is None:
            return None
        return Applied(response=json.loads(value), outbox_pks=(), replayed=True)

    @staticmethod
    def _record_event(
        conn: Connection, event_id: str, event_type: str, now: datetime, response: Mapping[str, Any]
    ) -> None:
        conn.execute(
            insert(events).values(id=event_id, type=event_type, received_at=now, response=json.dumps(response))
        )

    @staticmethod
    def _upsert_customer(conn: Connection, event: TicketCreated) -> int:
        c = event.customer
        pk = conn.execute(select(customers.c.pk).where(customers.c.external_id == c.id)).scalar()
        values = {"email": c.email, "name": c.name, "locale": c.locale}
        if pk is None:
            return inserted_pk(conn.execute(insert(customers).values(external_id=c.id, **values)))
        conn.execute(update(customers).where(customers.c.pk == pk).values(**values))
        return int(pk)
