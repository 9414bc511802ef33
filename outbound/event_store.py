"""The store side of applying help-desk events: each event is one work of the unit of work.

:func:`apply_event` runs an event on an existing ticket through an :class:`EventTx` and records
the event id with its answer in the same transaction; :func:`insert_ticket_created` records
``ticket.created`` in a handful of prebuilt statements (the event id claimed, the customer
upserted and the ticket inserted each in one statement, ``INSERT ... ON CONFLICT ... RETURNING``),
building the :class:`Ticket` its drafts see from the event rather than reading it back.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from gateway.errors import EventIdReused, TicketConflict, UnknownTicket
from gateway.models import EntryKind, Ticket, TicketCreated, TicketHistory, TicketState
from gateway.store.changes import ChangeKind, append_change, record_change
from gateway.store.db import Database
from gateway.store.records import inserted_pk, ticket_from_row
from gateway.store.sqlite import Prebuilt
from gateway.store.tables import customers, entries, events, tickets
from gateway.store.tickets import ticket_query
from gateway.store.uow import note
from outbound.history import HISTORY_KINDS, History, HistoryEntry, HistoryLimits, recent_history
from outbound.outbox import OutboxDraft, insert_draft, insert_drafts

__all__ = [
    "UNSEEN_CHECKS_DUE",
    "Applied",
    "EventTx",
    "apply_event",
    "apply_ticket_created",
    "claim_event",
    "fingerprint",
    "insert_ticket_created",
    "recent_entries",
    "recent_entries_of",
    "replayed_response",
]

#: The hand-on topic of teammate replies due for their unseen check: ``(ticket key, due at)``.
UNSEEN_CHECKS_DUE = "unseen_checks_due"


@dataclass(frozen=True)
class Applied:
    """The outcome of applying an event: the answer to give and the emails it stored."""

    response: dict[str, Any]
    outbox_pks: tuple[int, ...]
    replayed: bool

#: Times an event is retried after losing a race on a unique constraint (then it sees the winner).
RACE_RETRIES = 1


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

    def conversation(self, ticket: Ticket, limits: HistoryLimits) -> History:
        """The ticket's conversation so far, as its next email shows it (read before that email's own entry)."""
        return recent_entries(self.conn, ticket.key, limits=limits)

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

    def unseen_check_due(self, ticket_key: int, due_at: datetime) -> None:
        """Once committed, schedule the ticket's unseen check for ``due_at`` (hand-on
        :data:`UNSEEN_CHECKS_DUE`; lost, the sweeper finds the due entry in the store)."""
        note(self.conn, UNSEEN_CHECKS_DUE, (ticket_key, due_at))

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
_SET_RESPONSE = update(events).where(events.c.id == bindparam("b_id")).values(response=bindparam("b_response"))
_REPLAYED = select(events.c.response, events.c.type, events.c.fingerprint).where(events.c.id == bindparam("event_id"))


def fingerprint(event: Any) -> str:
    """SHA-256 (hex) of an event record's content: the same event posted again has the same one.
    (The record's ``repr``: exact for the strings, datetimes and enums events hold, at a tenth of
    the cost of serialising them to JSON; the records are the gateway's own frozen dataclasses.)"""
    return hashlib.sha256(repr(event).encode()).hexdigest()


def claim_event(
    conn: Connection, *, event_id: str, event_type: str, now: datetime, response: str, fingerprint: str | None = None
) -> bool:
    """Record ``event_id`` with its answer; False (recording nothing) when it was already recorded.

    On PostgreSQL a concurrent transaction holding the same id makes this wait for its outcome,
    so of several concurrent repeats one applies the event and the others answer its answer.
    """
    claim = _CLAIM[conn.dialect.name]
    values = {"id": event_id, "type": event_type, "received_at": now, "response": response, "fingerprint": fingerprint}
    return claim.first(conn, values) is not None


def replayed_response(conn: Connection, event_id: str, fingerprint: str | None = None) -> str | None:
    """The answer recorded for ``event_id`` (JSON text), or None.

    Raises :class:`EventIdReused` when the recorded event had another body than ``fingerprint``.
    """
    row = conn.execute(_REPLAYED, {"event_id": event_id}).first()
    if row is None:
        return None
    if fingerprint is not None and row.fingerprint is not None and row.fingerprint != fingerprint:
        raise EventIdReused(
            f"event id {event_id!r} was already used for a different {row.type} event; "
            "a repeated event must be the same event (nothing of this one was applied)"
        )
    return str(row.response)


def apply_event(
    db: Database,
    *,
    event_id: str,
    event_type: str,
    now: datetime,
    work: Callable[[EventTx], Mapping[str, Any]],
    fingerprint: str | None = None,
) -> Applied:
    """Run ``work`` and record ``event_id`` with its answer, all in one work of the unit of work
    (a transaction, or a savepoint of a shared one), answering once it has committed.

    Returns the answer, the stored emails' pks and whether it was a replay. The event id is
    claimed first, so a repeated ``event_id`` (even one posted at the same moment) runs nothing
    and returns the first answer; one with another body raises :class:`EventIdReused`. An error
    raised by ``work`` rolls everything back, the claim included. Losing a race on another
    unique constraint retries once, which then sees the winner's rows.
    """

    def once(conn: Connection) -> Applied:
        if not claim_event(conn, event_id=event_id, event_type=event_type, now=now, response="",
                           fingerprint=fingerprint):
            return _replay(conn, event_id, fingerprint)
        tx = EventTx(conn, now=now)
        response = json.dumps(dict(work(tx)))
        tx.log_changes()
        conn.execute(_SET_RESPONSE, {"b_id": event_id, "b_response": response})
        return Applied(json.loads(response), tuple(tx.outbox_pks), False)

    for attempt in range(RACE_RETRIES + 1):
        try:
            return db.write(once)
        except IntegrityError:
            if attempt == RACE_RETRIES:
                raise
    raise AssertionError("unreachable")


def _upserts(insert_fn: Callable[[Any], Any]) -> dict[str, Any]:
    customer = insert_fn(customers)
    customer = customer.on_conflict_do_update(
        index_elements=[customers.c.external_id],
        set_={
            "email": customer.excluded.email, "name": customer.excluded.name, "locale": customer.excluded.locale,
            # An event that does not know the zone keeps the one known.
            "time_zone": func.coalesce(customer.excluded.time_zone, customers.c.time_zone),
        },
    ).returning(customers.c.pk)
    ticket = insert_fn(tickets).on_conflict_do_nothing(index_elements=[tickets.c.external_id]).returning(tickets.c.pk)
    return {"customer": Prebuilt(customer), "ticket": Prebuilt(ticket)}


_HISTORY_KIND_VALUES = sorted(k.value for k in HISTORY_KINDS)


def recent_entries(
    conn: Connection, ticket_key: int, *, limits: HistoryLimits, exclude: frozenset[int] = frozenset(),
) -> History:
    """The ticket's conversation so far (:func:`outbound.history.recent_history`) inside the caller's
    transaction: its most recent customer-visible entries, newest first, without ``exclude`` (entry
    keys the email shows as new), and how many there are in all."""
    return recent_entries_of(conn, [ticket_key], limits=limits, exclude=exclude)[ticket_key]


def recent_entries_of(
    conn: Connection, ticket_keys: Sequence[int], *, limits: HistoryLimits, exclude: frozenset[int] = frozenset(),
) -> dict[int, History]:
    """:func:`recent_entries` of each ticket of ``ticket_keys``, in one query (a window per ticket: its
    newest ``limits.max_entries`` entries and its count)."""
    if limits.max_entries == 0 or not ticket_keys:
        return {key: History() for key in ticket_keys}
    where = [entries.c.ticket_pk.in_(sorted(set(ticket_keys))), entries.c.kind.in_(_HISTORY_KIND_VALUES)]
    if exclude:
        where.append(entries.c.pk.not_in(sorted(exclude)))
    # Ranked on the keys alone; the texts are read for the kept entries only.
    newest = func.row_number().over(partition_by=entries.c.ticket_pk, order_by=entries.c.pk.desc())
    total = func.count().over(partition_by=entries.c.ticket_pk)
    ranked = (
        select(entries.c.pk, entries.c.ticket_pk, newest.label("n"), total.label("total")).where(*where).subquery()
    )
    rows = conn.execute(
        select(entries.c.pk, entries.c.ticket_pk, entries.c.kind, entries.c.text, entries.c.created_at,
               entries.c.author_name, entries.c.state_to, ranked.c.total)
        .join_from(ranked, entries, entries.c.pk == ranked.c.pk)
        .where(ranked.c.n <= limits.max_entries)
        .order_by(ranked.c.ticket_pk, ranked.c.n)
    ).all()
    found: dict[int, list[HistoryEntry]] = {key: [] for key in ticket_keys}
    totals: dict[int, int] = {}
    for r in rows:
        found[r.ticket_pk].append(HistoryEntry(key=r.pk, kind=EntryKind(r.kind), text=r.text, created_at=r.created_at,
                                               author_name=r.author_name, state_to=r.state_to))
        totals[r.ticket_pk] = int(r.total)
    return {key: recent_history(newest_first, total=totals.get(key, 0), limits=limits)
            for key, newest_first in found.items()}


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
                       response=json.dumps(dict(response)), fingerprint=fingerprint(event)):
        return None
    c = event.customer
    customer_pk = int(upserts["customer"].first(
        conn, {"external_id": c.id, "email": c.email, "name": c.name, "locale": c.locale, "time_zone": c.time_zone}
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


def apply_ticket_created(
    db: Database,
    event: TicketCreated,
    *,
    now: datetime,
    response: Mapping[str, Any],
    drafts: Callable[[Ticket], list[OutboxDraft]],
    root_message_id: str | None,
) -> Applied:
    """Record the ticket, its first entry and its emails (built by ``drafts``; the first has
    ``root_message_id``) atomically. A repeated event id changes nothing and returns the first answer.
    """

    def work(conn: Connection) -> Applied:
        outbox_pks = insert_ticket_created(
            conn, event, now=now, response=response, drafts=drafts, root_message_id=root_message_id
        )
        if outbox_pks is not None:
            return Applied(dict(response), outbox_pks, False)
        return _replay(conn, event.event_id, fingerprint(event))

    try:
        return db.write(work)
    except IntegrityError:
        # Lost a race on a unique constraint to a concurrent request with the same event id.
        with db.read() as conn:
            return _replay(conn, event.event_id, fingerprint(event))


def _replay(conn: Connection, event_id: str, fingerprint: str | None) -> Applied:
    first = replayed_response(conn, event_id, fingerprint)
    if first is None:
        raise RuntimeError(f"event {event_id!r} is recorded without its answer")
    return Applied(json.loads(first), (), True)
