"""Tickets, their customers and their threads."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from gateway.models import Entry, Ticket, TicketCreated
from gateway.store.db import is_sqlite
from gateway.store.event_tx import EventTx, apply_event, replayed_response, ticket_query
from gateway.store.group_commit import GroupCommit
from gateway.store.outbox import OutboxDraft
from gateway.store.records import entry_from_row, ticket_from_row
from gateway.store.tables import entries, tickets
from gateway.store.ticket_created import TicketConflict, insert_ticket_created

__all__ = ["Applied", "TicketConflict", "TicketStore"]

@dataclass(frozen=True)
class Applied:
    """The outcome of applying an event: the answer to give and the emails to hand on."""

    response: dict[str, Any]
    outbox_pks: tuple[int, ...]
    replayed: bool


class TicketStore:
    """Reads and writes tickets and threads; each public method is one transaction."""

    def __init__(self, engine: Engine, *, group_commit: bool | None = None) -> None:
        """``group_commit``: let concurrent events share a transaction (:class:`GroupCommit`);
        None means on SQLite only."""
        self._engine = engine
        grouped = is_sqlite(engine) if group_commit is None else group_commit
        self.committer = GroupCommit(engine, grouped=grouped)

    def get(self, ticket_id: str) -> Ticket | None:
        """The ticket the help desk calls ``ticket_id``, or None."""
        with self._engine.connect() as conn:
            row = conn.execute(ticket_query().where(tickets.c.external_id == ticket_id)).first()
        return ticket_from_row(row) if row else None

    def get_by_key(self, key: int) -> Ticket | None:
        """The ticket with the gateway's own number ``key``, or None."""
        with self._engine.connect() as conn:
            row = conn.execute(ticket_query().where(tickets.c.pk == key)).first()
        return ticket_from_row(row) if row else None

    def thread(self, ticket_key: int) -> list[Entry]:
        """The ticket's entries, oldest first."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(entries).where(entries.c.ticket_pk == ticket_key).order_by(entries.c.pk)
            ).all()
        return [entry_from_row(r) for r in rows]

    def replayed_response(self, event_id: str) -> dict[str, Any] | None:
        """The answer given the first time ``event_id`` was applied, or None if it is new."""
        with self._engine.connect() as conn:
            return self.replayed_response_on(conn, event_id)

    @staticmethod
    def replayed_response_on(conn: Connection, event_id: str) -> dict[str, Any] | None:
        """:meth:`replayed_response` inside the transaction ``conn``."""
        value = replayed_response(conn, event_id)
        return json.loads(value) if value is not None else None

    def apply_ticket_created(
        self,
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

        def work(conn: Connection) -> tuple[tuple[int, ...] | None, dict[str, Any] | None]:
            outbox_pks = insert_ticket_created(
                conn, event, now=now, response=response, drafts=drafts, root_message_id=root_message_id
            )
            return outbox_pks, None if outbox_pks is not None else self.replayed_response_on(conn, event.event_id)

        try:
            outbox_pks, replay = self.committer.run(work)
            if outbox_pks is not None:
                return Applied(response=dict(response), outbox_pks=outbox_pks, replayed=False)
        except IntegrityError:
            # Lost a race on a unique constraint to a concurrent request with the same event id.
            replay = self.replayed_response(event.event_id)
            if replay is None:
                raise
        if replay is None:
            raise RuntimeError(f"event {event.event_id!r} is recorded without its answer")
        return Applied(response=replay, outbox_pks=(), replayed=True)

    def apply(
        self, *, event_id: str, event_type: str, now: datetime, work: Callable[[EventTx], Mapping[str, Any]]
    ) -> Applied:
        """Apply one event to an existing ticket: ``work`` reads and changes it through an
        :class:`EventTx` and returns the answer; all of it commits together or not at all.

        A repeated event id runs nothing and returns the first answer.
        """
        response, outbox_pks, replayed = apply_event(
            self.committer, event_id=event_id, event_type=event_type, now=now, work=work
        )
        return Applied(response=json.loads(response), outbox_pks=outbox_pks, replayed=replayed)
