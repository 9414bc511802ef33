"""The outbox: every outbound email, stored before it is handed to delivery, and its store queries."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, Integer, and_, bindparam, exists, func, insert, select, union_all, update

from gateway.models import OutboxEmail, OutboxStatus
from gateway.store.db import Database
from gateway.store.records import outbox_from_mapping, outbox_from_row, storable
from gateway.store.sqlite import Prebuilt
from gateway.store.tables import delivery_events, outbox, suppressions
from gateway.store.uow import note

__all__ = [
    "QUEUED_EMAILS",
    "Claimed",
    "DeliveryEvent",
    "LedgerKind",
    "OutboxDraft",
    "OutboxStore",
    "Outcome",
    "insert_draft",
    "insert_drafts",
    "ledger_rows",
    "suppress_address",
]

#: The hand-on topic of the emails a transaction stored (their pks): the composition root
#: registers delivery for it, so each commit's emails travel in one broker message.
QUEUED_EMAILS = "queued_emails"
_CLAIMABLE = (OutboxStatus.QUEUED.value, OutboxStatus.RETRYING.value, OutboxStatus.SENDING.value)


class LedgerKind(StrEnum):
    """What happened to an email (``queued`` is when its row was stored)."""

    QUEUED = "queued"
    SENT = "sent"
    DEFERRED = "deferred"
    FAILED = "failed"
    SUPPRESSED = "suppressed"
    BOUNCED = "bounced"
    COMPLAINED = "complained"


@dataclass(frozen=True)
class DeliveryEvent:
    """One line of an email's ledger."""

    kind: LedgerKind
    at: datetime
    status_code: str | None = None
    detail: str | None = None
    inbound_pk: int | None = None


def ledger_rows(outbox_pk: int, events: Sequence[DeliveryEvent]) -> list[dict[str, Any]]:
    """Rows of :data:`delivery_events` for ``events`` of one email."""
    return [
        {"outbox_pk": outbox_pk, "kind": e.kind.value, "at": e.at, "status_code": e.status_code,
         "detail": storable(e.detail)[:2000] if e.detail else None, "inbound_pk": e.inbound_pk}
        for e in events
    ]


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


_INSERT = Prebuilt(insert(outbox))


def insert_draft(conn: Connection, draft: OutboxDraft, *, now: datetime) -> int:
    """Insert ``draft`` as a queued email inside the caller's transaction; return its pk.

    Once the transaction commits, the email is handed on under :data:`QUEUED_EMAILS`.
    """
    (pk,) = insert_drafts(conn, [draft], now=now)
    return pk


def insert_drafts(conn: Connection, drafts: Sequence[OutboxDraft], *, now: datetime) -> list[int]:
    """Insert several drafts (one statement on PostgreSQL) inside the caller's transaction; their pks, in order."""
    pks = _INSERT.insert_many(conn, [_draft_values(d, now) for d in drafts])
    for pk in pks:
        note(conn, QUEUED_EMAILS, pk)
    return pks


_FINISHED = (OutboxStatus.SENT.value, OutboxStatus.FAILED.value, OutboxStatus.SUPPRESSED.value)
assert {*_CLAIMABLE, *_FINISHED} == {s.value for s in OutboxStatus}, "every status is claimable or finished"
#: Due for a send: not finished, and its time has come. Spelled as inequalities, which no index
#: serves, so SQLite looks the claim's few primary keys up rather than scanning every due email.
_DUE = (and_(*(outbox.c.status != s for s in _FINISHED)), outbox.c.next_attempt_at <= bindparam("b_now"))
#: The oldest queued emails: read off ``ix_outbox_status_pk`` in order, however long the queue.
_OLDEST_QUEUED = (
    select(outbox.c.pk)
    .where(outbox.c.status == OutboxStatus.QUEUED.value, outbox.c.pk != bindparam("b_pk"))
    .order_by(outbox.c.pk)
    .limit(bindparam("others", type_=Integer))
)
#: Whether the email's address is on the suppression list. Keys there are ``address.strip().lower()``;
#: SQL's ``lower(trim())`` agrees on every address the gateway stores (ASCII dot-atoms).
_IS_SUPPRESSED = exists().where(suppressions.c.address == func.lower(func.trim(outbox.c.to_addr)))
_WANTED = union_all(select(bindparam("b_pk", type_=Integer)), select(_OLDEST_QUEUED.subquery()))
_CLAIM = Prebuilt(
    update(outbox)
    .where(outbox.c.pk.in_(_WANTED), *_DUE)
    .values(status=OutboxStatus.SENDING.value, next_attempt_at=bindparam("lease_until"),
            updated_at=bindparam("b_updated_at"))
    .returning(*outbox.c, _IS_SUPPRESSED.label("suppressed"))
)
_OWN = select(outbox.c.pk).where(outbox.c.pk == bindparam("b_pk")).with_for_update(skip_locked=True)
#: The claim on PostgreSQL: the same emails, each row locked ``SKIP LOCKED`` as it is chosen, so concurrent
#: claims take different emails instead of queueing on (and deadlocking over) the same oldest ones.
_CLAIM_PG = Prebuilt(
    update(outbox)
    .where(outbox.c.pk.in_(union_all(
        select(_OWN.subquery()),
        select(_OLDEST_QUEUED.with_for_update(skip_locked=True).subquery()),
    )), *_DUE)
    .values(status=OutboxStatus.SENDING.value, next_attempt_at=bindparam("lease_until"),
            updated_at=bindparam("b_updated_at"))
    .returning(*outbox.c, _IS_SUPPRESSED.label("suppressed"))
)
_CLAIMED_KEYS = (*outbox.c.keys(), "suppressed")
_ADD_LEDGER = Prebuilt(insert(delivery_events))
_ENHANCED = re.compile(r"\b[245]\.\d{1,3}\.\d{1,3}\b")
#: The ledger line each outcome of a delivery attempt writes (an email handed back untried writes none).
_LEDGER_OF = {
    OutboxStatus.SENT: LedgerKind.SENT,
    OutboxStatus.RETRYING: LedgerKind.DEFERRED,
    OutboxStatus.FAILED: LedgerKind.FAILED,
    OutboxStatus.SUPPRESSED: LedgerKind.SUPPRESSED,
}


def suppress_address(
    conn: Connection, address: str, *, reason: str, now: datetime, kind: str, outbox_pk: int | None,
    inbound_pk: int | None = None, status_code: str | None = None, diagnostic: str | None = None,
) -> bool:
    """Put ``address`` on the suppression list with its evidence, inside the caller's transaction;
    False (changing nothing) when it is there already. The one place suppressions are written."""
    key = address.strip().lower()
    if conn.execute(select(suppressions.c.address).where(suppressions.c.address == key)).first():
        return False
    conn.execute(insert(suppressions).values(
        address=key, reason=reason, created_at=now, kind=kind, outbox_pk=outbox_pk, inbound_pk=inbound_pk,
        status_code=status_code, diagnostic=storable(diagnostic)[:2000] if diagnostic else None,
    ))
    return True


def _ledger_events(o: Outcome, now: datetime) -> list[DeliveryEvent]:
    kind = _LEDGER_OF.get(o.status)
    if kind is None:
        return []
    detail = o.reply if kind is LedgerKind.SENT else o.error
    if kind is LedgerKind.DEFERRED and o.next_attempt_at is not None:
        detail = f"{o.error}; next attempt at {o.next_attempt_at.isoformat()}"
    status = _ENHANCED.search(o.error or "")
    events = [DeliveryEvent(kind, now, status.group(0) if status else None, detail)]
    if o.suppress:
        events.append(DeliveryEvent(LedgerKind.SUPPRESSED, now, status.group(0) if status else None,
                                    f"{o.suppress} suppressed: the relay refused it for good"))
    return events
#: One statement for every outcome (``b_tried`` 1 counts an attempt), so a batch's rows are updated in
#: one pass in key order: two workers' transactions then take row locks in the same order
#: (PostgreSQL reported a deadlock when outcomes were written attempted-first).
_RECORD = Prebuilt(
    update(outbox).where(outbox.c.pk == bindparam("b_pk"))
    .values(attempts=outbox.c.attempts + bindparam("b_tried", type_=Integer))
)


@dataclass(frozen=True)
class Claimed:
    """An email taken for sending, and whether its address is on the suppression list."""

    email: OutboxEmail
    suppressed: bool


@dataclass(frozen=True, kw_only=True)
class Outcome:
    """What became of one claimed email."""

    pk: int
    status: OutboxStatus
    attempted: bool
    next_attempt_at: datetime | None = None
    error: str | None = None
    suppress: str | None = None  # an address to put on the suppression list
    reply: str | None = None  # the relay's answer when it accepted the email


#: ``announce(conn, outcomes, now)``: inside the transaction that records them, tell whoever must
#: know of outcomes worth telling (the delivery loop: the relay's refusals and held emails).
Announce = Callable[[Connection, Sequence["Outcome"], datetime], None]


class OutboxStore:
    """Reads and updates the outbox."""

    def __init__(self, db: Database, *, announce: Announce | None = None) -> None:
        self._db = db
        self._announce = announce

    def get(self, pk: int) -> OutboxEmail | None:
        """The email ``pk``, or None."""
        with self._db.read() as conn:
            row = conn.execute(select(outbox).where(outbox.c.pk == pk)).first()
        return outbox_from_row(row) if row else None

    def recent(self, *, limit: int = 100, ticket_key: int | None = None) -> list[OutboxEmail]:
        """Emails, newest first."""
        query = select(outbox).order_by(outbox.c.pk.desc()).limit(limit)
        if ticket_key is not None:
            query = query.where(outbox.c.ticket_pk == ticket_key)
        with self._db.read() as conn:
            return [outbox_from_row(r) for r in conn.execute(query)]

    def waiting(self) -> tuple[int, datetime | None]:
        """How many emails wait (queued, retrying or sending), and when the oldest of them was stored."""
        with self._db.read() as conn:
            count, oldest = conn.execute(
                select(func.count(), func.min(outbox.c.created_at, type_=outbox.c.created_at.type))
                .where(outbox.c.status.in_(_CLAIMABLE))
            ).one()
        return int(count), oldest

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
        with self._db.read() as conn:
            return list(conn.execute(query).scalars())

    def claim_batch(self, pk: int, *, now: datetime, lease: timedelta, limit: int) -> list[Claimed]:
        """Take email ``pk`` and up to ``limit - 1`` other queued, due emails for sending, in one
        transaction; each with whether its address is suppressed. ``pk`` comes first if it was due.

        Under load one worker sends a batch on its connection and records it in one commit; the
        broker messages of the others then find nothing to do. Idle, a batch is just ``pk``.
        """
        params = {"b_pk": pk, "b_now": now, "others": limit - 1, "lease_until": now + lease, "b_updated_at": now}
        # Not durable: a lost claim only lets the email be claimed again.
        rows = self._db.write(
            lambda conn: (_CLAIM_PG if conn.dialect.name == "postgresql" else _CLAIM).rows(conn, params), durable=False
        )
        claimed = [dict(zip(_CLAIMED_KEYS, row, strict=True)) for row in rows]
        claimed.sort(key=lambda m: (m["pk"] != pk, m["pk"]))
        return [Claimed(outbox_from_mapping(m), bool(m["suppressed"])) for m in claimed]

    def renew(self, pks: Sequence[int], *, now: datetime, lease: timedelta) -> int:
        """Hold the claimed emails ``pks`` (still ``sending``) for ``lease`` from ``now``, in one
        ``UPDATE``; how many were still held. Not durable: a lost renewal only shortens the hold."""
        if not pks:
            return 0
        query = (
            update(outbox)
            .where(outbox.c.pk.in_(list(pks)), outbox.c.status == OutboxStatus.SENDING.value)
            .values(next_attempt_at=now + lease, updated_at=now)
        )
        return self._db.write(lambda conn: int(conn.execute(query).rowcount), durable=False)

    def record(self, outcomes: Sequence[Outcome], *, now: datetime) -> None:
        """Record what became of claimed emails (and new suppressions), in one transaction.

        Not durable (see :class:`~gateway.store.uow.UnitOfWork`): if the machine goes down before the
        record reaches the disk, the claim's lease runs out and the email is sent again, same Message-ID.
        """
        rows = [
            {"b_pk": o.pk, "b_tried": int(o.attempted), "status": o.status.value, "updated_at": now,
             "next_attempt_at": o.next_attempt_at, "last_error": o.error}
            for o in sorted(outcomes, key=lambda o: o.pk)
        ]

        ledger = [row for o in outcomes for row in ledger_rows(o.pk, _ledger_events(o, now))]

        def work(conn: Connection) -> None:
            for o in outcomes:
                if o.suppress:
                    status = _ENHANCED.search(o.error or "")
                    suppress_address(conn, o.suppress, reason=o.error or "", now=now, kind="relay", outbox_pk=o.pk,
                                     status_code=status.group(0) if status else None, diagnostic=o.error)
            _RECORD.run_many(conn, rows)
            _ADD_LEDGER.run_many(conn, ledger)
            if self._announce is not None:
                self._announce(conn, outcomes, now)

        self._db.write(work, durable=False)


    def ledgers(self, pks: Sequence[int]) -> dict[int, list[DeliveryEvent]]:
        """What happened to each email of ``pks`` after it was queued, oldest first (one query)."""
        found: dict[int, list[DeliveryEvent]] = {pk: [] for pk in pks}
        if not found:
            return found
        with self._db.read() as conn:
            rows = conn.execute(
                select(delivery_events).where(delivery_events.c.outbox_pk.in_(list(found)))
                .order_by(delivery_events.c.pk)
            ).all()
        for r in rows:
            found[r.outbox_pk].append(DeliveryEvent(LedgerKind(r.kind), r.at, r.status_code, r.detail, r.inbound_pk))
        return found

    def is_suppressed(self, address: str) -> bool:
        """Whether ``address`` is on the suppression list."""
        with self._db.read() as conn:
            return conn.execute(
                select(suppressions.c.address).where(suppressions.c.address == address.strip().lower())
            ).first() is not None

