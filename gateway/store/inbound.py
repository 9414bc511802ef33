"""Raw inbound messages and what became of them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from gateway.models import EntryKind
from gateway.store.records import inserted_pk
from gateway.store.tables import entries, inbound_messages, tickets

__all__ = ["InboundStatus", "InboundStore", "RawMessage", "StoredInbound"]


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


class InboundStore:
    """Keeps raw inbound messages durably and lands the replies they carry."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

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
             ticket_key: int | None = None, threaded_by: str | None = None) -> None:
        """Record what became of message ``pk``."""
        with self._engine.begin() as conn:
            conn.execute(
                update(inbound_messages)
                .where(inbound_messages.c.pk == pk)
                .values(status=status, detail=detail, processed_at=now, ticket_pk=ticket_key,
                        threaded_by=threaded_by, attempts=inbound_messages.c.attempts + 1)
            )

    def land_customer_reply(
        self, pk: int, *, ticket_key: int, text: str, dedup_key: str, threaded_by: str, now: datetime
    ) -> bool:
        """Append the reply to the thread once; False (and the message marked duplicate) if it landed before."""
        try:
            with self._engine.begin() as conn:
                conn.execute(
                    insert(entries).values(
                        ticket_pk=ticket_key,
                        kind=EntryKind.CUSTOMER_REPLY.value,
                        text=text,
                        channel="email",
                        dedup_key=dedup_key,
                        inbound_pk=pk,
                        created_at=now,
                    )
                )
                conn.execute(update(tickets).where(tickets.c.pk == ticket_key).values(last_activity_at=now))
                conn.execute(
                    update(inbound_messages)
                    .where(inbound_messages.c.pk == pk)
                    .values(status=InboundStatus.LANDED, ticket_pk=ticket_key, threaded_by=threaded_by,
                            processed_at=now, detail=None, attempts=inbound_messages.c.attempts + 1)
                )
        except IntegrityError:
            self.mark(pk, InboundStatus.DUPLICATE, now=now, ticket_key=ticket_key, threaded_by=threaded_by,
                      detail=f"already landed on this ticket as {dedup_key}")
            return False
        return True
