"""The inbox: raw inbound messages, stored durably before ``250``, what became of each, and the
landing of the replies they carry (with their webhook call, in the same transaction).

Storing a message notes :data:`STORED_MAIL` (its pk) and landing a reply notes
:data:`~inbound.webhook.WEBHOOKS_QUEUED`; the unit of work hands both on after the commit.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from gateway.logs import one_line
from gateway.models import EntryKind, InboundStatus, RawMessage
from gateway.store.changes import ChangeKind, record_changes
from gateway.store.db import Database
from gateway.store.records import storable
from gateway.store.sqlite import Prebuilt
from gateway.store.tables import customers, entries, inbound_messages, outbox, tickets
from gateway.store.uow import note
from inbound.webhook import WebhookDraft, insert_webhooks

__all__ = [
    "STORED_MAIL", "Ending", "InboundSource", "InboundStore", "Landing", "ParsedFields", "ProcessedElsewhere",
    "ReplyParts", "StoredInbound", "insert_raw",
]

log = logging.getLogger(__name__)

#: A landing that raises this met the thread's unique (ticket, dedup key): the reply landed before
#: (the driver's own error when the statement ran through the SQLite speed path).
_REPEATED = (IntegrityError, sqlite3.IntegrityError)

#: The hand-on topic of messages stored (or released) for the pipeline: their pks.
STORED_MAIL = "stored_mail"

_INSERT_RAW = Prebuilt(insert(inbound_messages))


def insert_raw(conn: Connection, message: RawMessage, *, now: datetime) -> int:
    """Store ``message`` as received inside the caller's transaction; its pk, handed on once committed.

    Through the sqlite3 driver on SQLite (``gateway.store.sqlite``): the SMTP server's hot path,
    about half the CPU of SQLAlchemy's, and the driver lets go of the GIL while it writes.
    """
    pk = _INSERT_RAW.insert(conn, {
        "received_at": now, "mail_from": message.mail_from, "rcpt_to": json.dumps(list(message.rcpt_to)),
        "raw": message.raw, "size": len(message.raw), "status": InboundStatus.RECEIVED.value, "attempts": 0,
    })
    note(conn, STORED_MAIL, pk)
    return pk


@dataclass(frozen=True, kw_only=True)
class ParsedFields:
    """What parsing found, kept on the stored message for the quarantine and the audit."""

    message_id: str | None
    from_addr: str | None
    subject: str
    attachments: tuple[dict[str, object], ...] = ()

    def values(self) -> dict[str, object]:
        return {
            "message_id": storable(self.message_id or "")[:250] or None,
            "from_addr": storable(self.from_addr or "")[:320] or None,
            "subject": storable(self.subject)[:500],
            "attachments": json.dumps(list(self.attachments)),
        }


@dataclass(frozen=True, kw_only=True)
class ReplyParts:
    """What a landed reply keeps beside its text: its sanitised HTML, signature, trimmed history, rule."""

    html: str | None = None
    signature: str = ""
    trimmed: str = ""
    rule: str | None = None


@dataclass(frozen=True, kw_only=True)
class StoredInbound:
    """A raw inbound message as stored."""

    pk: int
    received_at: datetime
    mail_from: str
    rcpt_to: tuple[str, ...]
    raw: bytes
    status: InboundStatus
    ticket_key: int | None
    threaded_by: str | None
    detail: str | None
    message_id: str | None = None
    from_addr: str | None = None
    subject: str | None = None
    attachments: tuple[dict[str, object], ...] = ()
    released_at: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class InboundSource:
    """A stored message's bytes and whose ticket it landed on (for serving its attachments)."""

    pk: int
    raw: bytes
    #: The help desk's id of the customer whose ticket the reply landed on; None unless it landed.
    customer_id: str | None


class InboundStore:
    """Keeps raw inbound messages durably and lands the replies they carry."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def save_raw(self, *, mail_from: str, rcpt_to: Sequence[str], raw: bytes, now: datetime) -> int:
        """Commit ``raw`` durably; return the gateway's id for it. Raises if the store cannot commit."""
        return self.save_many([RawMessage(mail_from, tuple(rcpt_to), raw)], now=now)[0]

    def save_many(self, messages: Sequence[RawMessage], *, now: datetime) -> list[int]:
        """Commit every message of ``messages`` in one transaction; their ids, in order."""
        if not messages:
            return []
        return self._db.write(lambda conn: [insert_raw(conn, m, now=now) for m in messages])

    def store_async(self, message: RawMessage, *, now: datetime) -> asyncio.Future[int]:
        """Commit ``message`` from a coroutine (the SMTP server): grouped with the messages
        arriving at the same moment, each in its own savepoint if one of them fails."""
        return self._db.mail.submit_async(lambda conn: insert_raw(conn, message, now=now))

    def get(self, pk: int) -> StoredInbound | None:
        """The stored message ``pk``, or None."""
        with self._db.read() as conn:
            row = conn.execute(select(inbound_messages).where(inbound_messages.c.pk == pk)).first()
        return _stored(row._mapping) if row is not None else None

    def get_many(self, pks: Sequence[int], *, max_size: int) -> list[StoredInbound]:
        """The messages of ``pks`` still waiting to be processed and at most ``max_size`` bytes, in one
        read (in pk order); the others are left out."""
        query = select(inbound_messages).where(
            inbound_messages.c.pk.in_(sorted(set(pks))), inbound_messages.c.size <= max_size,
            inbound_messages.c.status == InboundStatus.RECEIVED.value,
        ).order_by(inbound_messages.c.pk)
        with self._db.read() as conn:
            return [_stored(row._mapping) for row in conn.execute(query)]

    def source(self, pk: int) -> InboundSource | None:
        """Message ``pk``'s raw bytes and, if its reply landed, the customer of that ticket; or None."""
        query = (
            select(inbound_messages.c.raw, inbound_messages.c.status, customers.c.external_id)
            .select_from(inbound_messages)
            .outerjoin(tickets, tickets.c.pk == inbound_messages.c.ticket_pk)
            .outerjoin(customers, customers.c.pk == tickets.c.customer_pk)
            .where(inbound_messages.c.pk == pk)
        )
        with self._db.read() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        landed = row.status == InboundStatus.LANDED.value
        return InboundSource(pk=pk, raw=bytes(row.raw), customer_id=row.external_id if landed else None)

    def unprocessed(self, *, received_before: datetime, limit: int = 500) -> list[int]:
        """Messages stored before ``received_before`` but not yet processed."""
        query = (
            select(inbound_messages.c.pk)
            .where(
                inbound_messages.c.status == InboundStatus.RECEIVED.value,
                inbound_messages.c.received_at <= received_before,
            )
            .order_by(inbound_messages.c.pk)
            .limit(limit)
        )
        with self._db.read() as conn:
            return list(conn.execute(query).scalars())

    def sweep(self, *, received_before: datetime, now: datetime, again_after: timedelta,
              limit: int = 500) -> list[int]:
        """What the sweeper re-enqueues: messages stored before ``received_before``, not processed
        yet, and not swept within ``again_after`` (a job it enqueued may still be waiting behind a
        backlog); marked swept now, so every sweeper of every worker agrees."""

        def work(conn: Connection) -> list[int]:
            pks = list(conn.execute(
                select(inbound_messages.c.pk)
                .where(
                    inbound_messages.c.status == InboundStatus.RECEIVED.value,
                    inbound_messages.c.received_at <= received_before,
                    or_(inbound_messages.c.swept_at.is_(None), inbound_messages.c.swept_at <= now - again_after),
                )
                .order_by(inbound_messages.c.pk)
                .limit(limit)
            ).scalars())
            if pks:
                conn.execute(update(inbound_messages).where(inbound_messages.c.pk.in_(pks)).values(swept_at=now))
            return pks

        return self._db.write(work, durable=False)  # lost, a message is only swept once more

    def record_crash(self, pk: int, error: str, *, now: datetime, give_up_after: int) -> bool:
        """Count a processing attempt of message ``pk`` that crashed (not an :class:`InboundError`);
        after ``give_up_after`` of them it ends ``failed`` with ``error``, instead of being swept
        and crashing again forever. True when it was given up."""

        def work(conn: Connection) -> bool:
            attempts = conn.execute(
                update(inbound_messages)
                .where(inbound_messages.c.pk == pk, inbound_messages.c.status == InboundStatus.RECEIVED.value)
                .values(attempts=inbound_messages.c.attempts + 1)
                .returning(inbound_messages.c.attempts)
            ).scalar()
            if attempts is None or attempts < give_up_after:
                return False
            conn.execute(update(inbound_messages).where(inbound_messages.c.pk == pk).values(
                status=InboundStatus.FAILED.value, processed_at=now,
                detail=storable(f"gave up after {attempts} attempts: {error}")[:2000],
            ))
            return True

        return self._db.write(work)

    def sent_message_ids(self, message_ids: Sequence[str]) -> dict[str, int]:
        """Which of ``message_ids`` the gateway sent (outbox, or a ticket's first email), and for which ticket."""
        ids = [m for m in dict.fromkeys(message_ids) if m][:100]
        if not ids:
            return {}
        with self._db.read() as conn:
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
        with self._db.read() as conn:
            pks = list(conn.execute(query).scalars())
        return [m for m in (self.get(pk) for pk in pks) if m is not None]

    def release(self, pk: int, *, now: datetime) -> bool:
        """Send quarantined message ``pk`` through the pipeline again, without the sender check.

        False if it is not (or no longer) quarantined.
        """

        def work(conn: Connection) -> bool:
            released = conn.execute(
                update(inbound_messages)
                .where(inbound_messages.c.pk == pk, inbound_messages.c.status == InboundStatus.QUARANTINED.value)
                .values(status=InboundStatus.RECEIVED.value, released_at=now, detail=None)
            ).rowcount == 1
            if released:
                note(conn, STORED_MAIL, pk)  # through the pipeline again once committed
            return released

        return self._db.write(work)

    def land_customer_reply(
        self, pk: int, *, ticket_key: int, text: str, dedup_key: str, threaded_by: str, now: datetime,
        parsed: ParsedFields | None = None, webhook: WebhookDraft | None = None, parts: ReplyParts | None = None,
    ) -> int | None:
        """Append the reply to the thread once (with the ``parts`` the extractor split off, for "show
        trimmed"), with its webhook call; the new entry's pk, or None (and the message marked
        duplicate) if it landed before. Raises :class:`ProcessedElsewhere` if the message had already ended."""
        landing = Landing(pk=pk, ticket_key=ticket_key, text=text, dedup_key=dedup_key, threaded_by=threaded_by,
                          now=now, parsed=parsed, webhook=webhook, parts=parts or ReplyParts())
        (result,) = self.finish([landing])
        if isinstance(result, Exception):
            raise result
        return result

    def finish(self, endings: Sequence[Landing | Ending]) -> list[int | Exception | None]:
        """Record how each message ended, all in one unit of work (a job's batch shares a transaction;
        one that fails rolls back alone): for a :class:`Landing`, the new entry's pk, or None (and the
        message marked duplicate) if the reply landed before; for an :class:`Ending`, None; a
        :class:`ProcessedElsewhere` if another worker ended the message first; or the error that ending
        raised."""
        if len(endings) > 1:
            try:  # the common case: every ending at once, a few statements for the whole batch
                return list(self._db.uow.run(lambda conn: _finish_all(conn, endings)))
            except Exception as exc:  # noqa: BLE001 - one failed (a reply that landed before...): one by one
                log.debug("%d endings recorded one by one: %s", len(endings), one_line(exc))
        results: list[int | Exception | None] = list(self._db.uow.run_each([_work(e) for e in endings]))
        repeats = [(n, e) for n, (e, r) in enumerate(zip(endings, results, strict=True))
                   if isinstance(e, Landing) and isinstance(r, _REPEATED)]
        if repeats:
            again = self._db.uow.run_each([_work(_repeat(e)) for _, e in repeats if isinstance(e, Landing)])
            for (n, _), result in zip(repeats, again, strict=True):
                results[n] = result if isinstance(result, Exception) else None
        return results


@dataclass(frozen=True, kw_only=True)
class Landing:
    """A reply to append to its ticket's thread, with its webhook call."""

    pk: int
    ticket_key: int
    text: str
    dedup_key: str
    threaded_by: str
    now: datetime
    parsed: ParsedFields | None = None
    webhook: WebhookDraft | None = None
    parts: ReplyParts = ReplyParts()


@dataclass(frozen=True, kw_only=True)
class Ending:
    """Where a message ended that lands nothing (quarantined, ignored, unthreaded, duplicate ...)."""

    pk: int
    status: str
    now: datetime
    detail: str | None = None
    ticket_key: int | None = None
    threaded_by: str | None = None
    parsed: ParsedFields | None = None


def _repeat(landing: Landing) -> Ending:
    return Ending(pk=landing.pk, status=InboundStatus.DUPLICATE, now=landing.now, ticket_key=landing.ticket_key,
                  threaded_by=landing.threaded_by, parsed=landing.parsed,
                  detail=f"already landed on this ticket as {landing.dedup_key}")


class ProcessedElsewhere(Exception):
    """The result of an ending for a message no longer ``received``: another worker recorded how it ended
    first (two jobs for one message ran at once), so this one recorded nothing."""


def _work(ending: Landing | Ending) -> Callable[[Connection], int | ProcessedElsewhere | None]:
    return lambda conn: _finish_all(conn, [ending])[0]


#: The landing's statements, built once (``gateway.store.sqlite``: measured in docs/benchmarks.md).
_ADD_ENTRY = Prebuilt(insert(entries))
_TOUCH_TICKET = Prebuilt(update(tickets).where(tickets.c.pk == bindparam("b_ticket")))
#: How a message ended: only from ``received``, so of two workers processing one message at once the second
#: records nothing (on PostgreSQL it waits for the first's row lock, then finds the row changed).
_MARK = Prebuilt(update(inbound_messages)
                 .where(inbound_messages.c.pk == bindparam("b_pk"),
                        inbound_messages.c.status == InboundStatus.RECEIVED.value)
                 .values(attempts=inbound_messages.c.attempts + 1))


def _finish_all(conn: Connection, endings: Sequence[Landing | Ending]) -> list[int | ProcessedElsewhere | None]:
    """Record how each message ended, in the caller's transaction: each message marked first (only one
    still ``received``: one another worker has just ended adds no entry and is not marked duplicate),
    then the replies' entries, changes, ticket touches and webhook calls, a statement each for all of
    them. Raises, for the caller to roll back, if any fails (a reply that landed before, say)."""
    results: list[int | ProcessedElsewhere | None] = []
    landing: list[tuple[int, Landing]] = []
    for ending in endings:
        status, detail = ((InboundStatus.LANDED, None) if isinstance(ending, Landing)
                          else (ending.status, ending.detail))
        if not _mark(conn, ending.pk, status, now=ending.now, detail=detail, ticket_key=ending.ticket_key,
                     threaded_by=ending.threaded_by, parsed=ending.parsed):
            results.append(ProcessedElsewhere(ending.pk))
            continue
        if isinstance(ending, Landing):
            landing.append((len(results), ending))
        results.append(None)
    if not landing:
        return results
    rows = [_entry_row(e) for _, e in landing]
    entry_pks = _ADD_ENTRY.insert_many(conn, rows)
    landed = [(e, pk) for (_, e), pk in zip(landing, entry_pks, strict=True)]
    record_changes(conn, [(e.ticket_key, pk, e.now) for e, pk in landed], kind=ChangeKind.ENTRY)
    _TOUCH_TICKET.run_many(conn, [{"b_ticket": e.ticket_key, "last_activity_at": e.now} for e, _ in landed])
    insert_webhooks(conn, [(e.webhook, pk, e.now) for e, pk in landed if e.webhook is not None])
    for (n, _), pk in zip(landing, entry_pks, strict=True):
        results[n] = pk
    return results


def _entry_row(landing: Landing) -> dict[str, object]:
    kept = landing.parts
    return {
        "ticket_pk": landing.ticket_key, "kind": EntryKind.CUSTOMER_REPLY.value, "text": storable(landing.text),
        "channel": "email", "dedup_key": storable(landing.dedup_key), "inbound_pk": landing.pk,
        "created_at": landing.now, "html": storable(kept.html) if kept.html else None,
        "signature": storable(kept.signature) if kept.signature else None,
        "trimmed": storable(kept.trimmed) if kept.trimmed else None, "rule": kept.rule,
    }


def _mark(conn: Connection, pk: int, status: str, *, now: datetime, detail: str | None,
          ticket_key: int | None, threaded_by: str | None, parsed: ParsedFields | None) -> bool:
    """Record how message ``pk`` ended; False if it was no longer ``received`` (nothing changed)."""
    values: dict[str, object] = {
        "b_pk": pk, "status": str(status), "detail": storable(detail) if detail is not None else None,
        "processed_at": now, "ticket_pk": ticket_key, "threaded_by": threaded_by,
    }
    if parsed is not None:
        values.update(parsed.values())
    return _MARK.count(conn, values) == 1


def _stored(m: Any) -> StoredInbound:
    return StoredInbound(
        pk=m["pk"],
        received_at=m["received_at"],
        mail_from=m["mail_from"],
        rcpt_to=tuple(json.loads(m["rcpt_to"])),
        raw=bytes(m["raw"]),
        status=InboundStatus(m["status"]),
        ticket_key=m["ticket_pk"],
        threaded_by=m["threaded_by"],
        detail=m["detail"],
        message_id=m["message_id"],
        from_addr=m["from_addr"],
        subject=m["subject"],
        attachments=tuple(json.loads(m["attachments"] or "[]")),
        released_at=m["released_at"],
    )
