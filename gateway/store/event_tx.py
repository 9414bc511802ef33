"""One help-desk event applied as one transaction: read the ticket, change it, store its emails."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from gateway.errors import UnknownTicket
from gateway.models import EntryKind, Ticket, TicketHistory, TicketState
from gateway.store.changes import ChangeKind, record_change
from gateway.store.group_commit import GroupCommit
from gateway.store.outbox import OutboxDraft, insert_draft
from gateway.store.prebuilt import Prebuilt
from gateway.store.records import inserted_pk, ticket_from_row
from gateway.store.tables import customers, entries, events, tickets

__all__ = ["EventTx", "apply_event", "claim_event", "replayed_response", "ticket_query"]

#: Times an event is retried after losing a race on a unique constraint (then it sees the winner).
RACE_RETRIES = 1


def ticket_query() -> Any:
    """``SELECT`` of tickets joined with their customers, as :func:`ticket_from_row` reads them."""
    columns = (
        tickets,
        customers.c.external_id.label("customer_id"),
        customers.c.email,
        customers.c.name,
        customers.c.locale,
    )
    return select(*columns).join(customers, customers.c.pk == tickets.c.customer_pk)


class EventTx:
    """The store as one event sees it: every call runs in the event's transaction."""

    def __init__(self, conn: Connection, *, now: datetime) -> None:
        self.conn = conn
        self.now = now
        self.outbox_pks: list[int] = []
        self._added: list[tuple[int, int]] = []  # (ticket key, entry key) for the Messenger's changes log
        self._restated: set[int] = set()

    def ticket(self, ticket_id: str) -> Ticket:
        """The ticket ``ticket_id``, locked for this transaction; :class:`UnknownTicket` if none."""
        row = self.conn.execute(ticket_query().where(tickets.c.external_id == ticket_id).with_for_update()).first()
        if row is None:
            raise UnknownTicket(f"no ticket {ticket_id!r}")
        return ticket_from_row(row)

    def history(self, ticket: Ticket) -> TicketHistory:
        """The ticket's current state and every state its thread shows it has had."""
        seen = self.conn.execute(
            select(entries.c.state_to).where(entries.c.ticket_pk == ticket.key, entries.c.state_to.is_not(None))
        ).scalars()
        states = {TicketState(s) for s in seen if s in TicketState._value2member_map_}
        return TicketHistory(state=ticket.state, states_seen=frozenset(states | {ticket.state}))

    def reply_seen(self, reply_id: str) -> bool:
        """Whether a teammate reply with the help desk's id ``reply_id`` is on any ticket."""
        return self.conn.execute(
            select(entries.c.pk).where(
                entries.c.kind == EntryKind.TEAMMATE_REPLY.value, entries.c.external_id == reply_id
            ).limit(1)
        ).first() is not None

    def add_entry(self, ticket_key: int, kind: EntryKind, *, created_at: datetime, **values: Any) -> None:
        """Append an entry to the ticket's thread (``values``: text, html, author_name, ...)."""
        values.setdefault("text", "")
        row = {"ticket_pk": ticket_key, "kind": kind.value, "created_at": created_at, **values}
        self._added.append((ticket_key, inserted_pk(self.conn.execute(insert(entries).values(**row)))))

    def update_ticket(self, ticket: Ticket, *, activity_at: datetime, state: TicketState | None = None) -> Ticket:
        """Record activity at ``activity_at`` (never moving it back) and maybe a new state."""
        values: dict[str, Any] = {"last_activity_at": max(ticket.last_activity_at, activity_at)}
        if state is not None:
            values["state"] = state.value
            if state != ticket.state:
                self._restated.add(ticket.key)
        self.conn.execute(update(tickets).where(tickets.c.pk == ticket.key).values(**values))
        return ticket_from_row(self.conn.execute(ticket_query().where(tickets.c.pk == ticket.key)).one())

    def add_email(self, draft: OutboxDraft) -> int:
        """Store ``draft`` as a queued email; the first email of a ticket becomes its thread root."""
        pk = insert_draft(self.conn, draft, now=self.now)
        if draft.ticket_key is not None:
            self.conn.execute(
                update(tickets)
                .where(tickets.c.pk == draft.ticket_key, tickets.c.root_message_id.is_(None))
                .values(root_message_id=draft.message_id)
            )
        self.outbox_pks.append(pk)
        return pk

    def log_changes(self) -> None:
        """Log what the Messenger must be told: each entry added, and state changes that added none."""
        for ticket_key, entry_key in self._added:
            record_change(self.conn, ticket_key=ticket_key, kind=ChangeKind.ENTRY, entry_key=entry_key, now=self.now)
        for ticket_key in sorted(self._restated - {t for t, _ in self._added}):
            record_change(self.conn, ticket_key=ticket_key, kind=ChangeKind.STATE, now=self.now)


def _claims(insert_fn: Callable[[Any], Any]) -> Prebuilt:
    return Prebuilt(insert_fn(events).on_conflict_do_nothing(index_elements=[events.c.id]).returning(events.c.id))


#: Per dialect: record an event id with its answer unless it is recorded already.
_CLAIM = {"sqlite": _claims(sqlite.insert), "postgresql": _claims(postgresql.insert)}
_RECORD = insert(events)
_REPLAYED = select(events.c.response).where(events.c.id == bindparam("event_id"))


def claim_event(conn: Connection, *, event_id: str, event_type: str, now: datetime, response: str) -> bool:
    """Record ``event_id`` with its answer; False (recording nothing) when it was already recorded.

    On PostgreSQL a concurrent transaction holding the same id makes this wait for its outcome.
    """
    claim = _CLAIM[conn.dialect.name]
    return claim.first(conn, {"id": event_id, "type": event_type, "received_at": now, "response": response}) is not None


def replayed_response(conn: Connection, event_id: str) -> str | None:
    """The answer recorded for ``event_id`` (JSON text), or None."""
    value = conn.execute(_REPLAYED, {"event_id": event_id}).scalar()
    return None if value is None else str(value)


def apply_event(
    committer: GroupCommit,
    *,
    event_id: str,
    event_type: str,
    now: datetime,
    work: Callable[[EventTx], Mapping[str, Any]],
) -> tuple[str, tuple[int, ...], bool]:
    """Run ``work`` and record ``event_id`` with its answer, all in one transaction (or savepoint
    of a shared one, see :class:`GroupCommit`), answering once it has committed.

    Returns the answer (JSON text), the stored emails' pks and whether it was a replay. A
    repeated ``event_id`` runs nothing and returns the first answer. An error raised by
    ``work`` rolls everything back. Losing a race on a unique constraint (the same event or
    reply posted twice at once) retries once, which then sees the winner's rows.
    """

    def once(conn: Connection) -> tuple[str, tuple[int, ...], bool]:
        first = replayed_response(conn, event_id)
        if first is not None:
            return first, (), True
        tx = EventTx(conn, now=now)
        response = json.dumps(dict(work(tx)))
        tx.log_changes()
        conn.execute(_RECORD, {"id": event_id, "type": event_type, "received_at": now, "response": response})
        return response, tuple(tx.outbox_pks), False

    for attempt in range(RACE_RETRIES + 1):
        try:
            return committer.run(once)
        except IntegrityError:
            if attempt == RACE_RETRIES:
                raise
    raise AssertionError("unreachable")
