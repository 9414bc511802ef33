"""Raw inbound messages and what became of them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from gateway.models import EntryKind
from gateway.store.changes import ChangeKind, record_change
from gateway.store.records import inserted_pk
from gateway.store.tables import entries, inbound_messages, outbox, tickets, webhook_deliveries

__all__ = ["InboundStatus", "InboundStore", "ParsedFields", "RawMessage", "StoredInbound", "WebhookDraft"]


class InboundStatus:
    """Where a stored inbound message ended (values of ``inbound_messages.status``)."""

    RECEIVED = "received"
    LANDED = "landed"
    DUPLICATE = "duplicate"
    UNTHREADED = "unthreaded"
    QUARANTINED = "quarantined"
    AUTO_REPLY = "auto_reply"
    BOUNCE = "bounce"
    FAILED = "failed"


@dataclass(frozen=True)
class RawMessage:
    """A message as received, before it is stored: envelope and bytes."""

    mail_from: str
    rcpt_to: tuple[str, ...]
    raw: bytes


@dataclass(frozen=True, kw_only=True)
class ParsedFields:
    """What parsing found, kept on the stored message for the quarantine and the audit."""

    message_id: str | None
    from_addr: str | None
    subject: str
    attachments: tuple[dict[str, object], ...] = ()

    def values(self) -> dict[str, object]:
        return {
            "message_id": (self.message_id or "")[:250] or None,
            "from_addr": (self.from_addr or "")[:320] or None,
            "subject": self.subject[:500],
            "attachments": json.dumps(list(self.attachments)),
        }


@dataclass(frozen=True)
class WebhookDraft:
    """A help-desk webhook call to store with the reply it announces (same transaction)."""

    url: str
    payload: str


@dataclass(frozen=True, kw_only=True)
class StoredInbound:
    """A raw inbound message as stored."""

    pk: int
    received_at: datetime
    mail_from: str
    rcpt_to: tuple[str, ...]
    raw: bytes
    status: str
    ticket_key: int | None
    threaded_by: str | None
    detail: str | None
    message_id: str | None = None
    from_addr: str | None = None
    subject: str | None = None
    attachments: tuple[dict[str, object], ...] = ()
    released_at: datetime | None = None


class InboundStore:
    """Keeps raw inbound messages durably and lands the replies they carry."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._sqlite_insert: _SqliteInsert | None = None

    def save_raw(self, *, mail_from: str, rcpt_to: Sequence[str], raw: bytes, now: datetime) -> int:
        """Commit ``raw`` durably; return the gateway's id for it. Raises if the store cannot commit."""
        with self._engine.begin() as conn:
            return inserted_pk(conn.execute(
                insert(inbound_messages).values(
                    received_at=now,
                    mail_from=mail_from,
                    rcpt_to=json.dumps(list(rcpt_to)),
                    raw=raw,
                    size=len(raw),
                    status=InboundStatus.RECEIVED,
                    attempts=0,
                )
            ))

    def save_many(self, messages: Sequence[RawMessage], *, now: datetime) -> list[int]:
        """Commit every message of ``messages`` in one transaction (group commit); their ids, in order."""
        if not messages:
            return []
        if self._engine.dialect.name == "sqlite":
            return self._save_many_sqlite(messages, now=now)
        rows = [
            {
                "received_at": now,
                "mail_from": m.mail_from,
                "rcpt_to": json.dumps(list(m.rcpt_to)),
                "raw": m.raw,
                "size": len(m.raw),
                "status": InboundStatus.RECEIVED,
                "attempts": 0,
            }
            for m in messages
        ]
        statement = insert(inbound_messages).returning(inbound_messages.c.pk, sort_by_parameter_order=True)
        with self._engine.begin() as conn:
            return [int(pk) for pk in conn.execute(statement, rows).scalars()]

    def _save_many_sqlite(self, messages: Sequence[RawMessage], *, now: datetime) -> list[int]:
        """:meth:`save_many` on SQLite, through the driver: the SMTP edge's hot path.

        The same INSERT SQLAlchemy would run (compiled once from the table, values through the
        columns' own bind processors), but each row is one call into sqlite3, which lets go of the
        GIL while it writes: the SMTP event loop keeps running during the commit. About a third of
        the CPU of the SQLAlchemy path, most of which held the GIL.
        """
        if self._sqlite_insert is None:
            self._sqlite_insert = _SqliteInsert(self._engine)
        return self._sqlite_insert.run(messages, now=now)

    def get(self, pk: int) -> StoredInbound | None:
        """The stored message ``pk``, or None."""
        with self._engine.connect() as conn:
            row = conn.execute(select(inbound_messages).where(inbound_messages.c.pk == pk)).first()
        if row is None:
            return None
        m = row._mapping
        return StoredInbound(
            pk=m["pk"],
            received_at=m["received_at"],
            mail_from=m["mail_from"],
            rcpt_to=tuple(json.loads(m["rcpt_to"])),
            raw=bytes(m["raw"]),
            status=m["status"],
            ticket_key=m["ticket_pk"],
            threaded_by=m["threaded_by"],
            detail=m["detail"],
            message_id=m["message_id"],
            from_addr=m["from_addr"],
            subject=m["subject"],
            attachments=tuple(json.loads(m["attachments"] or "[]")),
            released_at=m["released_at"],
        )

    def unprocessed(self, *, received_before: datetime, limit: int = 500) -> list[int]:
        """Messages stored before ``received_before`` but not yet processed: what the sweeper re-enqueues."""
        query = (
            select(inbound_messages.c.pk)
            .where(
                inbound_messages.c.status == InboundStatus.RECEIVED,
                inbound_messages.c.received_at <= received_before,
            )
            .order_by(inbound_messages.c.pk)
            .limit(limit)
        )
        with self._engine.connect() as conn:
            return list(conn.execute(query).scalars())

    def mark(self, pk: int, status: str, *, now: datetime, detail: str | None = None,
             ticket_key: int | None = None, threaded_by: str | None = None,
             parsed: ParsedFields | None = None) -> None:
        """Record what became of message ``pk``."""
        with self._engine.begin() as conn:
            self._mark(conn, pk, status, now=now, detail=detail, ticket_key=ticket_key, threaded_by=threaded_by,
                       parsed=parsed)

    @staticmethod
    def _mark(conn: Connection, pk: int, status: str, *, now: datetime, detail: str | None,
              ticket_key: int | None, threaded_by: str | None, parsed: ParsedFields | None) -> None:
        values: dict[str, object] = {
            "status": status, "detail": detail, "processed_at": now, "ticket_pk": ticket_key,
            "threaded_by": threaded_by, "attempts": inbound_messages.c.attempts + 1,
        }
        if parsed is not None:
            values.update(parsed.values())
        conn.execute(update(inbound_messages).where(inbound_messages.c.pk == pk).values(**values))

    def sent_message_ids(self, message_ids: Sequence[str]) -> dict[str, int]:
        """Which of ``message_ids`` the gateway sent (outbox, or a ticket's first email), and for which ticket."""
        ids = [m for m in dict.fromkeys(message_ids) if m][:100]
        if not ids:
            return {}
        with self._engine.connect() as conn:
            found = {
                row.message_id: row.ticket_pk
                for row in conn.execute(
                    select(outbox.c.message_id, outbox.c.ticket_pk).where(
                        outbox.c.message_id.in_(ids), outbox.c.ticket_pk.is_not(None)
                    )
                )
            }
            for row in conn.execute(
                select(tickets.c.root_message_id, tickets.c.pk).where(tickets.c.root_message_id.in_(ids))
            ):
                found.setdefault(row.root_message_id, row.pk)
        return {k: int(v) for k, v in found.items()}

    def quarantined(self, *, limit: int = 100) -> list[StoredInbound]:
        """Quarantined messages, newest first."""
        query = (
            select(inbound_messages.c.pk)
            .where(inbound_messages.c.status == InboundStatus.QUARANTINED)
            .order_by(inbound_messages.c.pk.desc())
            .limit(limit)
        )
        with self._engine.connect() as conn:
            pks = list(conn.execute(query).scalars())
        return [m for m in (self.get(pk) for pk in pks) if m is not None]

    def release(self, pk: int, *, now: datetime) -> bool:
        """Send quarantined message ``pk`` through the pipeline again, without the sender check.

        False if it is not (or no longer) quarantined.
        """
        with self._engine.begin() as conn:
            return conn.execute(
                update(inbound_messages)
                .where(inbound_messages.c.pk == pk, inbound_messages.c.status == InboundStatus.QUARANTINED)
                .values(status=InboundStatus.RECEIVED, released_at=now, detail=None)
            ).rowcount == 1

    def land_customer_reply(
        self, pk: int, *, ticket_key: int, text: str, dedup_key: str, threaded_by: str, now: datetime,
        parsed: ParsedFields | None = None, webhook: WebhookDraft | None = None,
    ) -> int | None:
        """Append the reply to the thread once, with its webhook call; the new entry's pk, or None
        (and the message marked duplicate) if it landed before."""
        try:
            with self._engine.begin() as conn:
                entry_pk = inserted_pk(conn.execute(
                    insert(entries).values(
                        ticket_pk=ticket_key,
                        kind=EntryKind.CUSTOMER_REPLY.value,
                        text=text,
                        channel="email",
                        dedup_key=dedup_key,
                        inbound_pk=pk,
                        created_at=now,
                    )
                ))
                record_change(conn, ticket_key=ticket_key, kind=ChangeKind.ENTRY, entry_key=entry_pk, now=now)
                conn.execute(update(tickets).where(tickets.c.pk == ticket_key).values(last_activity_at=now))
                self._mark(conn, pk, InboundStatus.LANDED, now=now, detail=None, ticket_key=ticket_key,
                           threaded_by=threaded_by, parsed=parsed)
                if webhook is not None:
                    conn.execute(insert(webhook_deliveries).values(
                        entry_pk=entry_pk, url=webhook.url, payload=webhook.payload, status="queued",
                        attempts=0, created_at=now, updated_at=now, next_attempt_at=now,
                    ))
        except IntegrityError:
            self.mark(pk, InboundStatus.DUPLICATE, now=now, ticket_key=ticket_key, threaded_by=threaded_by,
                      detail=f"already landed on this ticket as {dedup_key}", parsed=parsed)
            return None
        return entry_pk

    def webhook_for_entry(self, entry_pk: int) -> int | None:
        """The webhook delivery created with entry ``entry_pk``, if any."""
        with self._engine.connect() as conn:
            value = conn.execute(
                select(webhook_deliveries.c.pk).where(webhook_deliveries.c.entry_pk == entry_pk)
            ).scalar()
        return int(value) if value is not None else None


_RAW_COLUMNS = ("received_at", "mail_from", "rcpt_to", "raw", "size", "status", "attempts")


class _SqliteInsert:
    """``INSERT INTO inbound_messages`` of received messages, run through the sqlite3 driver."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        statement = insert(inbound_messages).values({name: None for name in _RAW_COLUMNS})
        self._sql = str(statement.compile(dialect=engine.dialect))
        received_at = inbound_messages.c.received_at.type
        self._received_at = received_at.dialect_impl(engine.dialect).bind_processor(engine.dialect)

    def run(self, messages: Sequence[RawMessage], *, now: datetime) -> list[int]:
        received_at: object = self._received_at(now) if self._received_at is not None else now
        with self._engine.connect() as conn:
            driver: Any = conn.connection.driver_connection
            driver.begin_immediate()
            try:
                pks = [
                    int(driver.execute(self._sql, (
                        received_at, m.mail_from, json.dumps(list(m.rcpt_to)), m.raw, len(m.raw),
                        InboundStatus.RECEIVED, 0,
                    )).lastrowid)
                    for m in messages
                ]
                driver.commit()
            except BaseException:
                driver.rollback()
                raise
        return pks
