"""Store side of the unseen check: pending teammate replies, and claiming them into one email."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, Select, or_, select, update
from sqlalchemy.engine import Engine

from gateway.errors import UnknownTicket
from gateway.models import EntryKind, Ticket
from gateway.store.event_tx import ticket_query
from gateway.store.outbox import OutboxDraft, insert_draft
from gateway.store.records import ticket_from_row
from gateway.store.tables import entries, tickets
from outbound.unseen import UnseenDecision

__all__ = ["PendingRow", "UnseenStore"]


@dataclass(frozen=True, kw_only=True)
class PendingRow:
    """A teammate reply that has not been claimed for an email yet."""

    key: int
    ticket_key: int
    reply_id: str | None
    author_name: str | None
    text: str
    html: str | None
    sent_at: datetime
    due_at: datetime | None
    seen_at: datetime | None


def _pending_query() -> Select[Any]:
    return select(entries).where(
        entries.c.kind == EntryKind.TEAMMATE_REPLY.value,
        entries.c.claimed_at.is_(None),
    )


def _row(row: Row[Any]) -> PendingRow:
    m = row._mapping
    return PendingRow(
        key=m["pk"],
        ticket_key=m["ticket_pk"],
        reply_id=m["external_id"],
        author_name=m["author_name"],
        text=m["text"],
        html=m["html"],
        sent_at=m["created_at"],
        due_at=m["due_at"],
        seen_at=m["seen_at"],
    )


class UnseenStore:
    """Reads pending teammate replies; runs one ticket's check in one transaction."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def pending(self, ticket_key: int) -> list[PendingRow]:
        """The ticket's teammate replies not yet claimed for an email, oldest first."""
        query = _pending_query().where(entries.c.ticket_pk == ticket_key).order_by(entries.c.pk)
        with self._engine.connect() as conn:
            return [_row(r) for r in conn.execute(query)]

    def overdue(self, *, before: datetime, limit: int = 5000) -> list[PendingRow]:
        """Unclaimed, unseen replies whose own window ended before ``before`` (what the sweeper looks at)."""
        query = (
            _pending_query()
            .where(entries.c.due_at <= before, or_(entries.c.seen_at.is_(None), entries.c.seen_at > before))
            .order_by(entries.c.due_at)
            .limit(limit)
        )
        with self._engine.connect() as conn:
            return [_row(r) for r in conn.execute(query)]

    def check(
        self,
        ticket_key: int,
        *,
        now: datetime,
        decide: Callable[[list[PendingRow]], UnseenDecision],
        draft: Callable[[Ticket, list[PendingRow]], OutboxDraft],
    ) -> tuple[int | None, UnseenDecision]:
        """Decide on the ticket's pending replies and, if some are to go, claim them and store
        their one email (built by ``draft``, newest first), all in one transaction.

        The pending rows are locked (``FOR UPDATE``; SQLite serialises writers anyway), so two
        checks of one ticket never claim the same reply. Returns the email's outbox id (None if
        nothing was sent) and the decision.
        """
        with self._engine.begin() as conn:
            query = _pending_query().where(entries.c.ticket_pk == ticket_key).order_by(entries.c.pk)
            rows = [_row(r) for r in conn.execute(query.with_for_update())]
            decision = decide(rows)
            if not decision.send:
                return None, decision
            ticket_row = conn.execute(ticket_query().where(tickets.c.pk == ticket_key)).first()
            if ticket_row is None:
                raise UnknownTicket(f"unseen check for unknown ticket key {ticket_key!r}")
            chosen = set(decision.send)
            replies = sorted((r for r in rows if r.key in chosen), key=lambda r: (r.sent_at, r.key), reverse=True)
            outbox_pk = insert_draft(conn, draft(ticket_from_row(ticket_row), replies), now=now)
            conn.execute(
                update(entries)
                .where(entries.c.pk.in_(list(chosen)))
                .values(claimed_at=now, emailed_outbox_pk=outbox_pk)
            )
        return outbox_pk, decision
