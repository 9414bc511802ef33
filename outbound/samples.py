"""Sample data for template previews: one ticket and what each email kind needs (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from gateway.models import Customer, TeammateReply, Ticket, TicketState
from outbound.drafts import replies_context, ticket_context

__all__ = ["SAMPLE_AT", "sample_context", "sample_ticket"]

#: When the sample ticket was created.
SAMPLE_AT = datetime(2026, 11, 26, 9, 30, tzinfo=UTC)

_REPLIES = (
    TeammateReply(
        id="sample-1", author_name="Grace Hopper", created_at=SAMPLE_AT + timedelta(minutes=20), html=None,
        text="Thanks for the details! Could you send us a photo of the printer's status page?",
    ),
    TeammateReply(
        id="sample-2", author_name="Grace Hopper", created_at=SAMPLE_AT + timedelta(minutes=22),
        text="Also: which paper tray do you use?",
        html=(
            "<p>Also: which <strong>paper tray</strong> do you use?"
            ' See <a href="https://example.com/trays">our guide</a>.</p>'
        ),
    ),
)


def sample_ticket(locale: str, *, created_by: str = "customer") -> Ticket:
    """A ticket as a customer with ``locale`` would have it (opened by the customer, or by a teammate)."""
    return Ticket(
        key=1, id="T-1042", title="Printer prints blank pages",
        description="Since this morning every page comes out blank.\nI already changed the cartridge.",
        state=TicketState.IN_PROGRESS, created_by=created_by, created_at=SAMPLE_AT, last_activity_at=SAMPLE_AT,
        customer=Customer(id="sample", email="ada@example.com", name="Ada Lovelace", locale=locale),
    )


def sample_context(kind: str, locale: str) -> dict[str, Any]:
    """Everything the ``kind`` templates need, with sample values."""
    context = ticket_context(sample_ticket(locale))
    if kind == "teammate_reply":
        context["replies"] = replies_context(_REPLIES)
    elif kind == "state_changed":
        context["ticket"].state = TicketState.RESOLVED.value
        context["change"] = SimpleNamespace(**{"from": TicketState.IN_PROGRESS.value, "to": TicketState.RESOLVED.value})
    return context
