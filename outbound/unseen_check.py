"""Runs R2's unseen check for one ticket: decide (pure), claim and store the email, schedule again."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from gateway.models import TeammateReply, Ticket
from gateway.store.outbox import OutboxDraft
from gateway.store.unseen import PendingRow, UnseenStore
from outbound.unseen import PendingReply, decide, next_due

__all__ = ["UnseenChecker", "as_teammate_replies"]

#: Other overdue tickets one check takes along in its transaction (a backlog drains in batches).
CHECK_BATCH = 100

DraftEmail = Callable[[Ticket, list[PendingRow], datetime], OutboxDraft]


def as_teammate_replies(rows: list[PendingRow]) -> list[TeammateReply]:
    """The claimed rows as the replies the ``teammate_reply`` email shows (order kept)."""
    return [
        TeammateReply(
            id=r.reply_id or "", author_name=r.author_name or "", text=r.text, html=r.html, created_at=r.sent_at
        )
        for r in rows
    ]


def _pending(rows: list[PendingRow]) -> list[PendingReply]:
    return [PendingReply(r.key, r.sent_at, r.seen_at) for r in rows]


class UnseenChecker:
    """Emails a ticket's teammate replies that stayed unseen, once, in one email per burst."""

    def __init__(
        self,
        *,
        store: UnseenStore,
        draft_email: DraftEmail,
        schedule: Callable[[int, float], None],
        clock: Callable[[], datetime],
        delay: timedelta,
        max_wait: timedelta,
        batch: int = CHECK_BATCH,
    ) -> None:
        self._store = store
        self._draft_email = draft_email
        self._schedule = schedule
        self._clock = clock
        self._delay = delay
        self._max_wait = max_wait
        self._batch = batch

    def schedule_for(self, ticket_key: int, due_at: datetime) -> None:
        """Ask for a check of ``ticket_key`` at ``due_at`` (a delayed broker message)."""
        self._schedule(ticket_key, max(0.0, (due_at - self._clock()).total_seconds()))

    def check(self, ticket_key: int) -> list[int]:
        """Check ``ticket_key`` (and other overdue tickets, in one batch) now; return the outbox ids stored."""
        now = self._clock()
        outcomes = self._store.check(
            [ticket_key],
            now=now,
            batch=self._batch,
            decide=lambda rows: decide(_pending(rows), now=now, delay=self._delay, max_wait=self._max_wait),
            draft=lambda ticket, rows: self._draft_email(ticket, rows, now),
        )
        stored = [o.outbox_pk for o in outcomes if o.outbox_pk is not None]  # handed on by the store
        for outcome in outcomes:
            if outcome.decision.check_again_at is not None:
                self.schedule_for(outcome.ticket_key, outcome.decision.check_again_at)
        return stored

    def next_due(self, ticket_key: int) -> datetime | None:
        """When the ticket's unseen replies are next due to be emailed (None: nothing pending)."""
        pending = _pending(self._store.pending(ticket_key))
        return next_due(pending, delay=self._delay, max_wait=self._max_wait, now=self._clock())

    def overdue_tickets(self, *, grace: timedelta) -> set[int]:
        """Tickets whose check is overdue by more than ``grace`` (lost broker message, dead worker)."""
        now = self._clock()
        before = now - grace
        by_ticket: dict[int, list[PendingRow]] = {}
        for row in self._store.overdue(before=before):
            by_ticket.setdefault(row.ticket_key, []).append(row)
        overdue = set()
        for ticket_key in by_ticket:
            pending = _pending(self._store.pending(ticket_key))
            due = next_due(pending, delay=self._delay, max_wait=self._max_wait, now=now)
            if due is not None and due <= before:
                overdue.add(ticket_key)
        return overdue
