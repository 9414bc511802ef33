"""Sample data for template previews: one ticket and what each email kind needs (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from gateway.models import Customer, EntryKind, TeammateReply, Ticket, TicketState
from outbound.drafts import replies_context, ticket_context
from outbound.history import History, HistoryEntry, HistoryLimits, history_context, recent_history

__all__ = ["SAMPLE_AT", "SAMPLE_REPLIES", "sample_context", "sample_history", "sample_ticket"]

#: When the sample ticket was created.
SAMPLE_AT = datetime(2026, 11, 26, 9, 30, tzinfo=UTC)

#: The sample burst of teammate replies (oldest first).
SAMPLE_REPLIES = (
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


def _entry(key: int, minutes: int, kind: EntryKind, text: str = "", **values: str) -> HistoryEntry:
    return HistoryEntry(key=key, kind=kind, text=text, created_at=SAMPLE_AT - timedelta(minutes=minutes), **values)


#: A long thread before the sample replies, oldest first: what a customer's history looks like
#: after a day of back and forth, by email and in the Messenger.
_THREAD = (
    _entry(1, 1440, EntryKind.TICKET_CREATED, "Since this morning every page comes out blank.\n"
           "I already changed the cartridge.", state_to="submitted"),
    _entry(2, 1400, EntryKind.STATE_CHANGED, state_to="in_progress"),
    _entry(3, 1390, EntryKind.TEAMMATE_REPLY, "Sorry to hear that! Which printer model is it, and does the "
           "test page print?", author_name="Grace Hopper"),
    _entry(4, 1200, EntryKind.CUSTOMER_REPLY, "It is the LaserJet 4200. The test page is blank too."),
    _entry(5, 1180, EntryKind.TEAMMATE_REPLY, "Thanks. Please open the front cover, take the toner out, shake "
           "it gently five or six times and put it back. Then switch the printer off, wait thirty seconds, "
           "switch it on again and print the test page once more. If the page is still blank, look for a "
           "strip of orange tape on the side of the cartridge: new cartridges ship with it, and it must be "
           "pulled out before the first print.", author_name="Grace Hopper"),
    _entry(6, 1100, EntryKind.STATE_CHANGED, state_to="waiting_on_customer"),
    _entry(7, 60, EntryKind.CUSTOMER_REPLY, "There was tape on it! Pages come out now, but very faint."),
    _entry(8, 30, EntryKind.STATE_CHANGED, state_to="in_progress"),
)


def sample_history(limits: HistoryLimits | None = None) -> History:
    """The conversation so far of the sample ticket, as an email shows it (default caps)."""
    newest_first = list(reversed(_THREAD))
    return recent_history(newest_first, total=len(newest_first), limits=limits or HistoryLimits())


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
    context["history"] = history_context(sample_history())
    if kind == "teammate_reply":
        context["replies"] = replies_context(SAMPLE_REPLIES)
    elif kind == "state_changed":
        context["ticket"].state = TicketState.RESOLVED.value
        context["change"] = SimpleNamespace(**{"from": TicketState.IN_PROGRESS.value, "to": TicketState.RESOLVED.value})
    return context
