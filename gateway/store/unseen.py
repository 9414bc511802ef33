"""Store side of the unseen check: pending teammate replies, and claiming them into one email."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, Select, bindparam, case, func, or_, select, update
from sqlalchemy.engine import Engine

from gateway.models import EntryKind, Ticket
from gateway.store.event_tx import ticket_query
from gateway.store.outbox import OutboxDraft, insert_drafts
from gateway.store.records import ticket_from_row
from gateway.store.tables import entries, tickets
from outbound.unseen import UnseenDecision

__all__ = ["CheckOutcome", "PendingRow", "UnseenStore"]


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


#: A teammate reply not yet claimed for an email.
_PENDING = (entries.c.kind == EntryKind.TEAMMATE_REPLY.value, entries.c.claimed_at.is_(None))
#: Claims one reply for one email (executed with many parameter sets at once).
_CLAIM = (
    update(entries)
    .where(entries.c.pk == bindparam("entry"))
    .values(emailed_outbox_pk=bindparam("email"))
)


def _pending_query() -> Select[Any]:
    return select(entries).where(*_PENDING)


@dataclass(frozen=True)
class CheckOutcome:
    """What one ticket's check did: the email it stored (if any) and its decision."""

    ticket_key: int
    outbox_pk: int | None
    decision: UnseenDecision


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
        ticket_keys: Sequence[int],
        *,
        now: datetime,
        batch: int,
        decide: Callable[[list[PendingRow]], UnseenDecision],
        draft: Callable[[Ticket, list[PendingRow]], OutboxDraft],
    ) -> list[CheckOutcome]:
        """Check ``ticket_keys`` and up to ``batch`` other overdue tickets in one transaction.

        Each ticket is locked first (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite serialises
        writers anyway), so a ticket is checked by one worker at a time and a ticket another
        worker holds is left to it. For each ticket: ``decide`` on its pending replies, and if
        some are to go, claim them and store their one email (built by ``draft``, newest first).
        Batching turns a backlog of due checks into a few transactions instead of one each.
        """
        with self._engine.begin() as conn:
            # The asked tickets with anything pending, and other tickets with a reply already due.
            asked_first = func.max(case((entries.c.ticket_pk.in_(list(ticket_keys)), 0), else_=1))
            wanted = (
                select(entries.c.ticket_pk)
                .where(*_PENDING, or_(entries.c.due_at <= now, entries.c.ticket_pk.in_(list(ticket_keys))))
                .group_by(entries.c.ticket_pk)
                .order_by(asked_first, func.min(entries.c.due_at))
                .limit(batch + len(ticket_keys))
            )
            candidates = sorted(conn.execute(wanted).scalars())
            if not candidates:
                return []
            locked = conn.execute(
                ticket_query()
                .where(tickets.c.pk.in_(candidates))
                .order_by(tickets.c.pk)
                .with_for_update(of=tickets, skip_locked=True)
            ).all()
            held = {row._mapping["pk"]: ticket_from_row(row) for row in locked}
            pending: dict[int, list[PendingRow]] = {key: [] for key in held}
            query = select(entries).where(*_PENDING, entries.c.ticket_pk.in_(list(held))).order_by(entries.c.pk)
            for row in conn.execute(query):
                pending[row._mapping["ticket_pk"]].append(_row(row))
            outcomes: list[CheckOutcome] = []
            drafts: list[OutboxDraft] = []
            for key, rows in pending.items():
                decision = decide(rows)
                outcomes.append(CheckOutcome(key, None, decision))
                if decision.send:
                    chosen = set(decision.send)
                    replies = [r for r in rows if r.key in chosen]
                    replies.sort(key=lambda r: (r.sent_at, r.key), reverse=True)
                    drafts.append(draft(held[key], replies))
            outbox_pks = iter(insert_drafts(conn, drafts, now=now))
            claimed: list[dict[str, int | None]] = []
            for i, outcome in enumerate(outcomes):
                if outcome.decision.send:
                    outcomes[i] = CheckOutcome(outcome.ticket_key, next(outbox_pks), outcome.decision)
                    claimed += [{"entry": k, "email": outcomes[i].outbox_pk} for k in outcome.decision.send]
            if claimed:
                conn.execute(_CLAIM.values(claimed_at=now), claimed)
        return outcomes
