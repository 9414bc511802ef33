"""The Messenger's reads (Recent tickets, thread pages, change batches) and its seen receipts."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, bindparam, exists, func, or_, select, update

from gateway.errors import UnknownEntry
from gateway.messenger.view import (
    NOTIFYING_KINDS,
    EntryAttachment,
    Pill,
    ThreadEntry,
    ThreadPage,
    TicketSummary,
    parse_entry_id,
)
from gateway.messenger.view import preview as make_preview
from gateway.models import EntryKind
from gateway.store.changes import Change, ChangeKind, ChangeLog, record_change
from gateway.store.db import Database
from gateway.store.tables import customers, entries, inbound_messages, tickets
from inbound.attachments import attachment_path

__all__ = ["ChangeView", "MessengerStore"]

_last = entries.alias("last_entry")
_unseen = entries.alias("unseen_entry")
_NOTIFYING = sorted(k.value for k in NOTIFYING_KINDS)


@dataclass(frozen=True)
class ChangeView:
    """A logged change with what the Messenger needs to apply it: the ticket now, and the entry added."""

    change: Change
    ticket: TicketSummary
    entry: ThreadEntry | None


def _pill(m: Any) -> Pill:
    return Pill(key=m["pk"], id=m["external_id"], title=m["title"], state=m["state"], customer_id=m["customer_id"])


#: Entries with the attachment metadata of the email they came from (kept on the raw message's row).
_ENTRIES = (
    select(entries, inbound_messages.c.attachments.label("inbound_attachments"))
    .select_from(entries)
    .outerjoin(inbound_messages, inbound_messages.c.pk == entries.c.inbound_pk)
)


def _attachments(inbound_pk: int | None, stored: str | None) -> tuple[EntryAttachment, ...]:
    """The entry's attachments with their URLs, from the metadata stored when the reply landed."""
    if inbound_pk is None or not stored:
        return ()
    return tuple(
        EntryAttachment(filename=a.get("filename"), content_type=str(a.get("content_type", "")),
                        size=int(a.get("size", 0)), inline=bool(a.get("inline")), url=attachment_path(inbound_pk, n))
        for n, a in enumerate(json.loads(stored))
    )


def _entry(m: Any) -> ThreadEntry:
    return ThreadEntry(
        key=m["pk"], kind=EntryKind(m["kind"]), text=m["text"], created_at=m["created_at"],
        author_name=m["author_name"], channel=m["channel"], reply_id=m["external_id"],
        state_from=m["state_from"], state_to=m["state_to"], seen_at=m["seen_at"],
        attachments=_attachments(m["inbound_pk"], m["inbound_attachments"]),
        **({"html": m["html"], "signature": m["signature"], "trimmed": m["trimmed"]}
           if m["kind"] == EntryKind.CUSTOMER_REPLY.value else {}),
    )


def _waits_for_receipt(table: Any, created_by: Any) -> Any:
    """SQL for :func:`gateway.messenger.view.counts_as_unseen`: news from the help desk."""
    return or_(
        table.c.kind.in_(_NOTIFYING),
        and_(table.c.kind == EntryKind.TICKET_CREATED.value, created_by == "teammate"),
    )


def _summary_query() -> Select[Any]:
    """Tickets with their newest entry (by time, then arrival) and their unseen count."""
    newest = (
        select(entries.c.pk).where(entries.c.ticket_pk == tickets.c.pk)
        .order_by(entries.c.created_at.desc(), entries.c.pk.desc()).limit(1)
        .correlate(tickets).scalar_subquery()
    )
    unseen = (
        select(func.count()).select_from(_unseen)
        .where(
            _unseen.c.ticket_pk == tickets.c.pk,
            _unseen.c.seen_at.is_(None),
            _waits_for_receipt(_unseen, tickets.c.created_by),
        )
        .correlate(tickets).scalar_subquery()
    )
    return (
        select(
            tickets.c.pk, tickets.c.external_id, tickets.c.title, tickets.c.state,
            customers.c.external_id.label("customer_id"), _last.c.kind, _last.c.text,
            _last.c.created_at, _last.c.state_to, unseen.label("unseen"),
        )
        .join(customers, customers.c.pk == tickets.c.customer_pk)
        .join(_last, _last.c.pk == newest)
        .order_by(_last.c.created_at.desc(), _last.c.pk.desc())
    )


# The reads' statements are built once: building the Recent tickets one cost about 1 ms a call,
# more than SQLite takes to run it (bench/bench_reads.py). Values come as bound parameters.
_SUMMARY = _summary_query()
_RECENT = _SUMMARY.where(customers.c.external_id == bindparam("customer_id")).limit(bindparam("limit"))
_PILL = (
    select(tickets.c.pk, tickets.c.external_id, tickets.c.title, tickets.c.state,
           customers.c.external_id.label("customer_id"))
    .join(customers, customers.c.pk == tickets.c.customer_pk)
    .where(tickets.c.external_id == bindparam("ticket_id"))
)
_ON_TICKET = _ENTRIES.where(entries.c.ticket_pk == bindparam("ticket_pk"))
#: A page of entries: the newest, those before a cursor (both newest first), those after one (oldest first).
_PAGE_NEWEST = _ON_TICKET.order_by(entries.c.pk.desc()).limit(bindparam("limit"))
_PAGE_BEFORE = _ON_TICKET.where(entries.c.pk < bindparam("cursor")).order_by(entries.c.pk.desc()).limit(
    bindparam("limit"))
_PAGE_AFTER = _ON_TICKET.where(entries.c.pk > bindparam("cursor")).order_by(entries.c.pk).limit(bindparam("limit"))
_OLDER = select(exists().where(entries.c.ticket_pk == bindparam("ticket_pk"), entries.c.pk < bindparam("cursor")))
_NEWER = select(exists().where(entries.c.ticket_pk == bindparam("ticket_pk"), entries.c.pk > bindparam("cursor")))


def _summary(m: Any) -> TicketSummary:
    pill = _pill(m)
    text = make_preview(EntryKind(m["kind"]), m["text"], state_to=m["state_to"], title=pill.title)
    return TicketSummary(pill=pill, last_activity_at=m["created_at"], preview=text, unseen_count=int(m["unseen"]))


class MessengerStore:
    """Reads the Messenger's view of tickets; records seen receipts."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self.changes = ChangeLog(db)

    def pill(self, ticket_id: str) -> Pill | None:
        """The ticket the help desk calls ``ticket_id``, or None."""
        with self._db.read() as conn:
            row = conn.execute(_PILL, {"ticket_id": ticket_id}).first()
        return _pill(row._mapping) if row else None

    def recent_tickets(self, customer_id: str, *, limit: int) -> list[TicketSummary]:
        """The customer's tickets, most recent activity first."""
        with self._db.read() as conn:
            return [_summary(r._mapping) for r in conn.execute(_RECENT, {"customer_id": customer_id, "limit": limit})]

    def summaries(self, ticket_keys: Iterable[int]) -> dict[int, TicketSummary]:
        """Recent-tickets rows of the given tickets, by ticket key."""
        keys = sorted(set(ticket_keys))
        if not keys:
            return {}
        with self._db.read() as conn:
            rows = conn.execute(_SUMMARY.where(tickets.c.pk.in_(keys))).all()
        return {r.pk: _summary(r._mapping) for r in rows}

    def thread_page(self, pill: Pill, *, limit: int, before: int | None = None, after: int | None = None) -> ThreadPage:
        """Up to ``limit`` entries, oldest first: the newest ones, or those before/after a cursor."""
        params: dict[str, Any] = {"ticket_pk": pill.key, "limit": limit}
        if after is not None:
            query, params["cursor"] = _PAGE_AFTER, after
        elif before is not None:
            query, params["cursor"] = _PAGE_BEFORE, before
        else:
            query = _PAGE_NEWEST
        with self._db.read() as conn:
            rows = [_entry(r._mapping) for r in conn.execute(query, params)]
            if after is None:
                rows.reverse()

            def beyond(statement: Any, cursor: int) -> bool:
                return bool(conn.execute(statement, {"ticket_pk": pill.key, "cursor": cursor}).scalar())

            older = bool(rows) and beyond(_OLDER, rows[0].key)
            newer = bool(rows) and beyond(_NEWER, rows[-1].key)
        return ThreadPage(
            pill=pill,
            entries=tuple(rows),
            older=rows[0].id if older else None,
            newer=rows[-1].id if newer else None,
        )

    def changes_since(self, customer_id: str, *, after: int, limit: int) -> list[ChangeView]:
        """The customer's changes after id ``after``, each with its ticket's row and the entry it added."""
        found = self.changes.since(customer_id, after=after, limit=limit)
        if not found:
            return []
        summaries = self.summaries(c.ticket_key for c in found)
        added = {c.entry_key for c in found if c.entry_key is not None}
        with self._db.read() as conn:
            rows = conn.execute(_ENTRIES.where(entries.c.pk.in_(sorted(added)))).all() if added else []
        by_key = {r.pk: _entry(r._mapping) for r in rows}
        return [
            ChangeView(c, summaries[c.ticket_key], by_key.get(c.entry_key) if c.entry_key else None) for c in found
        ]

    def mark_seen(self, pill: Pill, *, up_to: str | None, at: datetime | None, now: datetime) -> int:
        """Record a seen receipt; return how many unseen entries it newly covers (0 for a repeat).

        ``up_to`` names an entry (its Messenger id, or a teammate reply's help-desk id): it and
        every earlier entry are seen, at ``at`` if given, else now. Without it, everything sent
        at or before ``at`` is seen at ``at``. An entry keeps the earliest time any receipt gave it.
        """
        seen_at = min(at, now) if at is not None else now
        created_by = select(tickets.c.created_by).where(tickets.c.pk == pill.key).scalar_subquery()

        def work(conn: Any) -> int:
            if up_to is not None:
                covered: Any = entries.c.pk <= self._resolve(conn, pill, up_to)
            else:
                covered = entries.c.created_at <= seen_at
            newly = conn.execute(
                update(entries)
                .where(
                    entries.c.ticket_pk == pill.key,
                    _waits_for_receipt(entries, created_by),
                    covered,
                    or_(entries.c.seen_at.is_(None), entries.c.seen_at > seen_at),
                )
                .values(seen_at=seen_at)
            ).rowcount
            if newly:
                record_change(conn, ticket_key=pill.key, kind=ChangeKind.SEEN, now=now)
            return int(newly)

        return self._db.write(work)

    @staticmethod
    def _resolve(conn: Any, pill: Pill, up_to: str) -> int:
        """The entry key ``up_to`` names on the ticket: a teammate reply's help-desk id first, then ours."""
        key = conn.execute(
            select(entries.c.pk).where(entries.c.ticket_pk == pill.key, entries.c.external_id == up_to)
        ).scalar()
        if key is None and (ours := parse_entry_id(up_to)) is not None:
            key = conn.execute(
                select(entries.c.pk).where(entries.c.ticket_pk == pill.key, entries.c.pk == ours)
            ).scalar()
        if key is None:
            raise UnknownEntry(f"ticket {pill.id!r} has no reply {up_to!r}")
        return int(key)
