"""Store side of the unseen check: pending teammate replies, and claiming them into one email."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, Select, and_, or_, select, update
from sqlalchemy.engine import Engine

from gateway.models import EntryKind
from gateway.store.outbox import OutboxDraft, insert_draft
from gateway.store.tables import entries

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
    """Reads pending teammate replies and claims them, with their email, in one transaction."""

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

    def claim(
        self,
        ticket_key: int,
        keys: Sequence[int],
        *,
        now: datetime,
        draft: Callable[[list[PendingRow]], OutboxDraft],
    ) -> int | None:
        """Claim replies ``keys`` and store their one email (built by ``draft``) atomically.

        Returns the email's outbox id, or None if another check claimed any of them first (or a
        receipt arrived meanwhile): then nothing is claimed and nothing stored.
        """
        with self._engine.begin() as conn:
            still_pending = and_(
                entries.c.ticket_pk == ticket_key,
                entries.c.pk.in_(list(keys)),
                entries.c.kind == EntryKind.TEAMMATE_REPLY.value,
                entries.c.claimed_at.is_(None),
                or_(entries.c.seen_at.is_(None), entries.c.seen_at > now),
            )
            claimed = conn.execute(update(entries).where(still_pending).values(claimed_at=now)).rowcount
            if claimed != len(keys):
                conn.rollback()
                return None
            rows = conn.execute(select(entries).where(entries.c.pk.in_(list(keys))).order_by(entries.c.pk.desc()))
            outbox_pk = insert_draft(conn, draft([_row(r) for r in rows]), now=now)
            conn.execute(update(entries).where(entries.c.pk.in_(list(keys))).values(emailed_outbox_pk=outbox_pk))
        return outbox_pk
