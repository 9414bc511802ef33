"""Applies help-desk events (R1-R3): asks the policy what they do and stores that, emails included.

Each event is one work of the unit of work (``outbound.event_store``); what must happen after the
commit is noted in it and handed on by the unit of work: the stored emails to delivery
(``outbound.outbox.QUEUED_EMAILS``), replies due for their unseen check
(``outbound.event_store.UNSEEN_CHECKS_DUE``), the Messenger's wake-up (``gateway.store.changes``).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

from gateway.errors import DuplicateReply
from gateway.logs import event as log_event
from gateway.metrics import EVENTS, child
from gateway.models import EntryKind, TeammateReply, Ticket, TicketCreated, TicketReplied, TicketStateChanged
from gateway.store.db import Database
from gateway.tokens import Keyring
from outbound.drafts import Drafter
from outbound.event_store import Applied, EventTx, apply_event, apply_ticket_created, fingerprint
from outbound.history import NO_HISTORY, History, HistoryLimits
from outbound.outbox import OutboxDraft
from outbound.policy import AddToThread, ScheduleUnseenCheck, SendEmail, SetState, decide, labels
from outbound.render import Renderer

__all__ = ["Applied", "EventApplier"]

log = logging.getLogger(__name__)


class EventApplier:
    """Turns events into stored thread entries and stored emails, one transaction each."""

    def __init__(
        self,
        *,
        db: Database,
        renderer: Renderer,
        keyring: Keyring,
        from_address: str,
        unseen_delay: timedelta,
        history: HistoryLimits = HistoryLimits(),  # noqa: B008 - frozen, shared safely
        new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
    ) -> None:
        self._db = db
        self._history = history
        self._drafter = Drafter(renderer=renderer, keyring=keyring, from_address=from_address, new_id=new_id)
        self._unseen_delay = unseen_delay

    def ticket_created(self, event: TicketCreated, *, now: datetime) -> Applied:
        """R1: record the ticket and its "created" entry, and email the customer."""
        return _logged("ticket.created", event.event_id, event.ticket_id, self._ticket_created(event, now=now))

    def _ticket_created(self, event: TicketCreated, *, now: datetime) -> Applied:
        actions = decide(event, None, unseen_delay=self._unseen_delay)
        response = {"event_id": event.event_id, "ticket_id": event.ticket_id, "actions": labels(actions)}
        kinds = [a.kind for a in actions if isinstance(a, SendEmail)]
        root = self._drafter.new_message_id() if kinds else None  # the first email's: the thread's root
        applied = apply_ticket_created(
            self._db,
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

        def work(tx: EventTx) -> Mapping[str, Any]:
            ticket = tx.ticket(event.ticket_id)
            if tx.reply_seen(event.reply.id):
                raise DuplicateReply(f"reply id {event.reply.id!r} was already posted (event {event.event_id!r})")
            actions = decide(event, tx.history(ticket), unseen_delay=self._unseen_delay)
            self._carry_out(tx, ticket, event, actions, now=now)
            for action in actions:
                if isinstance(action, ScheduleUnseenCheck):
                    tx.unseen_check_due(ticket.key, action.due_at)
            return self._response(event, actions)

        applied = apply_event(self._db, event_id=event.event_id, event_type="ticket.reply", now=now, work=work,
                              fingerprint=fingerprint(event))
        return _logged("ticket.reply", event.event_id, event.ticket_id, applied)

    def state_changed(self, event: TicketStateChanged, *, now: datetime) -> Applied:
        """R3: move the ticket to its new state and email the customer (unless closed unresolved)."""

        def work(tx: EventTx) -> Mapping[str, Any]:
            ticket = tx.ticket(event.ticket_id)
            actions = decide(event, tx.history(ticket), unseen_delay=self._unseen_delay)
            self._carry_out(tx, ticket, event, actions, now=now)
            return self._response(event, actions)

        applied = apply_event(self._db, event_id=event.event_id, event_type="ticket.state_changed", now=now,
                              work=work, fingerprint=fingerprint(event))
        return _logged("ticket.state_changed", event.event_id, event.ticket_id, applied)

    @property
    def history_limits(self) -> HistoryLimits:
        """How much of the conversation so far each email shows."""
        return self._history

    def reply_email(
        self, ticket: Ticket, replies: Sequence[TeammateReply], *, now: datetime, history: History = NO_HISTORY,
    ) -> OutboxDraft:
        """The one email for a burst of teammate ``replies`` (newest first) with the conversation so far
        below them; the unseen check stores it."""
        return self._drafter.reply_email(ticket, replies, now=now, history=history)

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
        emails = any(isinstance(a, SendEmail) for a in actions)
        history = tx.conversation(ticket, self._history) if emails else NO_HISTORY  # before this event's entry
        ticket = tx.update_ticket(ticket, activity_at=event.occurred_at, state=new_state)
        for action in actions:
            if isinstance(action, AddToThread):
                tx.add_entry(ticket.key, action.kind, created_at=event.occurred_at, **_entry_values(event, action))
            elif isinstance(action, SendEmail):
                extra = _email_extra(event)
                tx.add_email(self._drafter.draft(ticket, action.kind, now=now, extra=extra, history=history))


def _logged(event_type: str, event_id: str, ticket_id: str, applied: Applied) -> Applied:
    child(EVENTS, event_type, "replayed" if applied.replayed else "applied").inc()
    log_event(log, "event.applied", type=event_type, event_id=event_id, ticket=ticket_id,
              actions=",".join(applied.response.get("actions", [])), emails=len(applied.outbox_pks),
              replayed=applied.replayed or None)
    return applied


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
