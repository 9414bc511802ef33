"""The outbox: every outbound email, stored before it is handed to the broker."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.engine import Engine

from gateway.models import OutboxEmail, OutboxStatus
from gateway.store.records import inserted_pk, outbox_from_row
from gateway.store.tables import outbox, suppressions

__all__ = ["OutboxDraft", "OutboxStore", "insert_draft", "insert_drafts"]

_CLAIMABLE = (OutboxStatus.QUEUED.value, OutboxStatus.RETRYING.value, OutboxStatus.SENDING.value)


@dataclass(frozen=True, kw_only=True)
class OutboxDraft:
    """An email ready to store: its full source and the fields the outbox lists."""

    ticket_key: int | None
    kind: str
    to: str
    subject: str
    message_id: str
    raw: bytes


def _draft_values(draft: OutboxDraft, now: datetime) -> dict[str, object]:
    return {
        "ticket_pk": draft.ticket_key,
        "kind": draft.kind,
        "to_addr": draft.to,
        "subject": draft.subject,
        "message_id": draft.message_id,
        "raw": draft.raw,
        "status": OutboxStatus.QUEUED.value,
        "attempts": 0,
        "created_at": now,
        "updated_at": now,
        "next_attempt_at": now,
    }


def insert_draft(conn: Connection, draft: OutboxDraft, *, now: datetime) -> int:
    """Insert ``draft`` as a queued email inside the caller's transaction; return its pk."""
    return inserted_pk(conn.execute(insert(outbox).values(**_draft_values(draft, now))))


def insert_drafts(conn: Connection, drafts: Sequence[OutboxDraft], *, now: datetime) -> list[int]:
    """Insert several drafts in one statement inside the caller's transaction; their pks, in order."""
    if not drafts:
        return []
    statement = insert(outbox).returning(outbox.c.pk, sort_by_parameter_order=True)
    return [int(pk) for pk in conn.execute(statement, [_draft_values(d, now) for d in drafts]).scalars()]


class OutboxStore:
    """Reads and updates the outbox."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def get(self, pk: int) -> OutboxEmail | None:
        """The email ``pk``, or None."""
        with self._engine.connect() as conn:
            row = conn.execute(select(outbox).where(outbox.c.pk == pk)).first()
        return outbox_from_row(row) if row else None

    def recent(self, *, limit: int = 100, ticket_key: int | None = None) -> list[OutboxEmail]:
        """Emails, newest first."""
        query = select(outbox).order_by(outbox.c.pk.desc()).limit(limit)
        if ticket_key is not None:
            query = query.where(outbox.c.ticket_pk == ticket_key)
        with self._engine.connect() as conn:
            return [outbox_from_row(r) for r in conn.execute(query)]

    def due(self, *, before: datetime, limit: int = 500) -> list[int]:
        """Emails waiting (or stuck sending) whose next attempt was due before ``before``.

        The sweeper re-enqueues these, so an email whose broker message was lost, or whose
        worker died while sending, is still sent.
        """
        query = (
            select(outbox.c.pk)
            .where(outbox.c.status.in_(_CLAIMABLE), outbox.c.next_attempt_at <= before)
            .order_by(outbox.c.next_attempt_at)
            .limit(limit)
        )
        with self._engine.connect() as conn:
            return list(conn.execute(query).scalars())

    def claim(self, pk: int, *, now: datetime, lease: timedelta) -> OutboxEmail | None:
        """Take email ``pk`` for sending if it is due; None if it is not (sent, or held by another).

        The claim is a lease: a worker that dies while sending loses it when ``lease`` runs out.
        """
        with self._engine.begin() as conn:
            claimed = conn.execute(
                update(outbox)
                .where(outbox.c.pk == pk, outbox.c.status.in_(_CLAIMABLE), outbox.c.next_attempt_at <= now)
                .values(status=OutboxStatus.SENDING.value, next_attempt_at=now + lease, updated_at=now)
            ).rowcount
            if claimed != 1:
                return None
            row = conn.execute(select(outbox).where(outbox.c.pk == pk)).one()
        return outbox_from_row(row)

    def is_suppressed(self, address: str) -> bool:
        """Whether ``address`` is on the suppression list."""
        with self._engine.connect() as conn:
            return conn.execute(
                select(suppressions.c.address).where(suppressions.c.address == address.strip().lower())
            ).first() is not None

    def suppress(self, address: str, *, reason: str, now: datetime) -> None:
        """Put ``address`` on the suppression list (idempotent)."""
        key = address.strip().lower()
        with self._engine.begin() as conn:
            exists = conn.execute(select(suppressions.c.address).where(suppressions.c.address == key)).first()
            if not exists:
                conn.execute(insert(suppressions).values(address=key, reason=reason, created_at=now))

    def mark(
        self,
        pk: int,
        status: OutboxStatus,
        *,
        now: datetime,
        attempted: bool = False,
        next_attempt_at: datetime | None = None,
        error: str | None = None,
    ) -> None:
        """Record where email ``pk`` is now."""
        values: dict[str, object] = {
            "status": status.value,
            "updated_at": now,
            "next_attempt_at": next_attempt_at,
            "last_error": error,
        }
        if attempted:
            values["attempts"] = outbox.c.attempts + 1
        with self._engine.begin() as conn:
            conn.execute(update(outbox).where(outbox.c.pk == pk).values(**values))
