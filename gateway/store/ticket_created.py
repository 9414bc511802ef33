"""``ticket.created`` in a handful of prebuilt statements, inside the caller's transaction.

The statements are built once, at import: executing them only binds values, so SQLAlchemy's
compiled cache hits without rebuilding an expression tree or its cache key per event. Nothing
is read back that the event already says: the event id is claimed (:func:`claim_event`), the customer upserted and
the ticket inserted each in one statement (``INSERT ... ON CONFLICT ... RETURNING``, SQLite
3.35+ and PostgreSQL), and the :class:`Ticket` handed to the drafts is built from the event.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert
from sqlalchemy.dialects import postgresql, sqlite

from gateway.errors import EventError
from gateway.models import EntryKind, Ticket, TicketCreated
from gateway.store.changes import ChangeKind, append_change
from gateway.store.event_tx import claim_event
from gateway.store.outbox import OutboxDraft, insert_drafts
from gateway.store.prebuilt import Prebuilt
from gateway.store.tables import customers, entries, tickets

__all__ = ["TicketConflict", "insert_ticket_created"]


class TicketConflict(EventError):
    """Raised when ``ticket.created`` names a ticket id that already exists under another event."""


def _upserts(insert_fn: Callable[[Any], Any]) -> dict[str, Any]:
    customer = insert_fn(customers)
    customer = customer.on_conflict_do_update(
        index_elements=[customers.c.external_id],
        set_={"email": customer.excluded.email, "name": customer.excluded.name, "locale": customer.excluded.locale},
    ).returning(customers.c.pk)
    ticket = insert_fn(tickets).on_conflict_do_nothing(index_elements=[tickets.c.external_id]).returning(tickets.c.pk)
    return {"customer": Prebuilt(customer), "ticket": Prebuilt(ticket)}


#: Per dialect: upsert a customer, insert a ticket unless its id is taken.
_UPSERTS = {"sqlite": _upserts(sqlite.insert), "postgresql": _upserts(postgresql.insert)}
_ADD_ENTRY = Prebuilt(insert(entries))


def insert_ticket_created(
    conn: Connection,
    event: TicketCreated,
    *,
    now: datetime,
    response: Mapping[str, Any],
    drafts: Callable[[Ticket], list[OutboxDraft]],
    root_message_id: str | None,
) -> tuple[int, ...] | None:
    """Record the event, ticket, first entry, change and emails; the emails' pks, or None on a replay.

    ``root_message_id`` is the Message-ID the ticket's first email will have (None: no email),
    drawn before so the ticket row is written once; the drafts see it on the :class:`Ticket`.
    Raises :class:`TicketConflict` when the ticket id is taken (the caller rolls back).
    """
    upserts = _UPSERTS[conn.dialect.name]
    if not claim_event(conn, event_id=event.event_id, event_type="ticket.created", now=now,
                       response=json.dumps(dict(response))):
        return None
    c = event.customer
    customer_pk = int(upserts["customer"].first(
        conn, {"external_id": c.id, "email": c.email, "name": c.name, "locale": c.locale}
    )[0])
    inserted = upserts["ticket"].first(conn, {
        "external_id": event.ticket_id, "customer_pk": customer_pk, "title": event.title,
        "description": event.description, "state": event.state.value, "created_by": event.created_by,
        "created_at": event.occurred_at, "last_activity_at": event.occurred_at, "root_message_id": root_message_id,
    })
    if inserted is None:
        raise TicketConflict(f"ticket {event.ticket_id!r} already exists")
    ticket_pk = int(inserted[0])
    entry_pk = _ADD_ENTRY.insert(conn, {
        "ticket_pk": ticket_pk, "kind": EntryKind.TICKET_CREATED.value, "text": event.description,
        "created_at": event.occurred_at, "state_to": event.state.value,
    })
    # The upsert holds the customer's row until commit, as the changes log needs.
    append_change(conn, customer_pk=customer_pk, customer_id=c.id, ticket_key=ticket_pk, kind=ChangeKind.ENTRY,
                  entry_key=entry_pk, now=now)
    ticket = Ticket(
        key=ticket_pk, id=event.ticket_id, title=event.title, description=event.description, state=event.state,
        created_by=event.created_by, created_at=event.occurred_at, last_activity_at=event.occurred_at, customer=c,
        root_message_id=root_message_id,
    )
    ticket_drafts = drafts(ticket)
    if ticket_drafts and ticket_drafts[0].message_id != root_message_id:
        raise ValueError(f"the first email is {ticket_drafts[0].message_id!r}, not the root {root_message_id!r}")
    return tuple(insert_drafts(conn, ticket_drafts, now=now))
