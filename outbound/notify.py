"""Applies help-desk events: asks the policy what they do, stores that, hands emails to delivery."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

from gateway.errors import DuplicateReply
from gateway.models import EntryKind, TeammateReply, Ticket, TicketCreated, TicketReplied, TicketStateChanged
from gateway.store.event_tx import EventTx
from gateway.store.outbox import OutboxDraft
from gateway.store.tickets import Applied, TicketStore
from gateway.tokens import Keyring
from outbound.drafts import Drafter
from outbound.policy import AddToThread, ScheduleUnseenCheck, SendEmail, SetState, decide, labels
from outbound.render import Renderer

__all__ = ["Notifier", "ScheduleUnseenCheckFn"]

log = logging.getLogger(__name__)

#: ``schedule_unseen_check(ticket_key, due_at)``: run the unseen check for the ticket at ``due_at``.
ScheduleUnseenCheckFn = Callable[[int, datetime], None]


class Notifier:
    """Turns events into stored thread entries and stored emails (the store hands those to delivery
    once they are committed: ``gateway.store.outbox.hand_on_after_commit``)."""

    def __init__(
        self,
        *,
        tickets: TicketStore,
        renderer: Renderer,
        keyring: Keyring,
        from_address: str,
        schedule_unseen_check: ScheduleUnseenCheckFn,
        unseen_delay: timedelta,
        new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
    ) -> None:
        self._tickets = tickets
        self._drafter = Drafter(renderer=renderer, keyring=keyring, from_address=from_address, new_id=new_id)
        self._schedule_unseen_check = schedule_unseen_check
        self._unseen_delay = unseen_delay

    def ticket_created(self, event: TicketCreated, *, now: datetime) -> Applied:
        """R1: record the ticket and its "created" entry, and email the customer."""
        actions = decide(event, None, unseen_delay=self._unseen_delay)
        response = {"event_id": event.event_id, "ticket_id": event.ticket_id, "actions": labels(actions)}
        kinds = [a.kind for a in actions if isinstance(a, SendEmail)]
        root = self._drafter.new_message_id() if kinds else None  # the first email's: the thread's root
        applied = self._tickets.apply_ticket_created(
            event,
            now=now,
            response=response,
            drafts=lambda ticket: [
                self._drafter.draft(ticket, kind, now=now, message_id=root if n == 0 else None)
                for n, kind in enumerate(kinds)
            ],
            root_message_id=root,
        )
        return applied

    def ticket_reply(self, event: TicketReplied, *, now: datetime) -> Applied:
        """R2: record the reply on the thread, due for the unseen check; no email from here."""
        due: list[tuple[int, datetime]] = []

        def work(tx: EventTx) -> Mapping[str, Any]:
            due.clear()  # a retried transaction starts over
            ticket = tx.ticket(event.ticket_id)
            if tx.reply_seen(event.reply.id):
                raise DuplicateReply(f"reply id {event.reply.id!r} was already posted (event {event.event_id!r})")
            actions = decide(event, tx.history(ticket), unseen_delay=self._unseen_delay)
            self._carry_out(tx, ticket, event, actions, now=now)
            due.extend((ticket.key, a.due_at) for a in actions if isinstance(a, ScheduleUnseenCheck))
            return self._response(event, actions)

        applied = self._tickets.apply(event_id=event.event_id, event_type="ticket.reply", now=now, work=work)
        # Committed: if scheduling fails now, the due time is in the store for the sweeper.
        for ticket_key, due_at in () if applied.replayed else due:
            try:
                self._schedule_unseen_check(ticket_key, due_at)
            except Exception:  # the broker is down; the sweeper finds the due entry
                log.warning("could not schedule the unseen check for event %s", event.event_id, exc_info=True)
        return applied

    def state_changed(self, event: TicketStateChanged, *, now: datetime) -> Applied:
        """R3: move the ticket to its new state and email the customer (unless closed unresolved)."""

        def work(tx: EventTx) -> Mapping[str, Any]:
            ticket = tx.ticket(event.ticket_id)
            actions = decide(event, tx.history(ticket), unseen_delay=self._unseen_delay)
            self._carry_out(tx, ticket, event, actions, now=now)
            return self._response(event, actions)

        return self._tickets.apply(event_id=event.event_id, event_type="ticket.state_changed", now=now, work=work)

    def reply_email(self, ticket: Ticket, replies: Sequence[TeammateReply], *, now: datetime) -> OutboxDraft:
        """The one email for a burst of teammate ``replies`` (newest first); the unseen check stores it."""
        return self._drafter.reply_email(ticket, replies, now=now)

    def draft(self, ticket: Ticket, kind: str, *, now: datetime, extra: Mapping[str, Any] | None = None) -> OutboxDraft:
        """Render and compose the email of ``kind`` about ``ticket`` (not stored)."""
        return self._drafter.draft(ticket, kind, now=now, extra=extra)

    @staticmethod
    def _response(event: TicketReplied | TicketStateChanged, actions: list[Any]) -> dict[str, Any]:
        return {"event_id": event.event_id, "ticket_id": event.ticket_id, "actions": labels(actions)}

    def _carry_out(
        self, tx: EventTx, ticket: Ticket, event: TicketReplied | TicketStateChanged, actions: list[Any], *,
        now: datetime,
    ) -> None:
        """Apply ``actions`` (from the policy) to the ticket inside ``tx``."""
        new_state = next((a.state for a in actions if isinstance(a, SetState)), None)
        ticket = tx.update_ticket(ticket, activity_at=event.occurred_at, state=new_state)
        for action in actions:
            if isinstance(action, AddToThread):
                tx.add_entry(ticket.key, action.kind, created_at=event.occurred_at, **_entry_values(event, action))
            elif isinstance(action, SendEmail):
                extra = _email_extra(event)
                tx.add_email(self._drafter.draft(ticket, action.kind, now=now, extra=extra))


def _entry_values(event: TicketReplied | TicketStateChanged, action: AddToThread) -> dict[str, Any]:
    if isinstance(event, TicketReplied):
        r = event.reply
        return {
            "text": r.text, "html": r.html, "author_name": r.author_name, "external_id": r.id, "due_at": action.due_at,
        }
    if action.kind == EntryKind.STATE_CHANGED:
        return {"state_from": event.state_from, "state_to": event.state_to}
    return {}


def _email_extra(event: TicketReplied | TicketStateChanged) -> dict[str, Any]:
    if isinstance(event, TicketStateChanged):
        return {"change": SimpleNamespace(**{"from": event.state_from, "to": event.state_to})}
    return {}
