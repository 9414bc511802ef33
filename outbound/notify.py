"""Applies help-desk events: records them, builds their emails and hands those to delivery."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from gateway.models import Ticket, TicketCreated
from gateway.store.outbox import OutboxDraft
from gateway.store.tickets import Applied, TicketStore
from gateway.tokens import Keyring
from outbound.compose import Envelope, compose, make_message_id, one_line
from outbound.policy import SendEmail, actions_for_created
from outbound.render import Renderer

__all__ = ["Notifier"]


class Notifier:
    """Turns events into stored thread entries and stored emails, then enqueues delivery."""

    def __init__(
        self,
        *,
        tickets: TicketStore,
        renderer: Renderer,
        keyring: Keyring,
        from_address: str,
        enqueue_delivery: Callable[[int], None],
        new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
    ) -> None:
        self._tickets = tickets
        self._renderer = renderer
        self._keyring = keyring
        self._from = from_address
        self._enqueue = enqueue_delivery
        self._new_id = new_id

    def ticket_created(self, event: TicketCreated, *, now: datetime) -> Applied:
        """R1: record the ticket and its "created" entry, and email the customer."""
        actions = actions_for_created(event)
        response = {
            "event_id": event.event_id,
            "ticket_id": event.ticket_id,
            "actions": [f"email:{a.kind}" for a in actions] + ["thread:ticket_created"],
        }
        applied = self._tickets.apply_ticket_created(
            event,
            now=now,
            response=response,
            drafts=lambda ticket: [self.draft(ticket, a, now=now) for a in actions],
        )
        self._hand_on(applied)
        return applied

    def draft(
        self, ticket: Ticket, action: SendEmail, *, now: datetime, extra: dict[str, Any] | None = None
    ) -> OutboxDraft:
        """Render and compose the email ``action`` asks for about ``ticket``."""
        context: dict[str, Any] = {
            "ticket": {
                "id": ticket.id,
                "title": one_line(ticket.title),
                "state": ticket.state.value,
                "description": ticket.description,
            },
            "customer": {"name": one_line(ticket.customer.name), "email": ticket.customer.email},
            **(extra or {}),
        }
        rendered = self._renderer.render(action.kind, ticket.customer.locale, context)
        message_id = make_message_id(self._new_id(), self._keyring.domain)
        root = ticket.root_message_id
        envelope = Envelope(
            from_addr=self._from,
            to_addr=ticket.customer.email,
            to_name=ticket.customer.name,
            reply_to=self._keyring.address_for(ticket.key, ticket.customer.email),
            message_id=message_id,
            date=now,
            in_reply_to=root,
            references=(root,) if root else (),
        )
        return OutboxDraft(
            ticket_key=ticket.key,
            kind=action.kind,
            to=ticket.customer.email,
            subject=rendered.subject,
            message_id=message_id,
            raw=compose(rendered, envelope),
        )

    def _hand_on(self, applied: Applied) -> None:
        # The rows are committed: if enqueueing fails here, the sweeper sends them later.
        for pk in applied.outbox_pks:
            try:
                self._enqueue(pk)
            except Exception:  # noqa: BLE001 - the broker is down; the store keeps the email
                pass
