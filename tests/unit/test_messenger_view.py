"""The Messenger's view (pure): previews, entry ids and which entries wait for a seen receipt."""

from __future__ import annotations

import pytest

from gateway.messenger.view import counts_as_unseen, entry_id, parse_entry_id, preview
from gateway.models import EntryKind


@pytest.mark.parametrize(
    ("kind", "text", "state_to", "expected"),
    [
        (EntryKind.TEAMMATE_REPLY, "  Try a\n\nnew   cartridge. ", None, "Try a new cartridge."),
        (EntryKind.STATE_CHANGED, "", "in_progress", "Ticket in progress"),
        (EntryKind.TICKET_CREATED, "", "submitted", "Printer"),
        (EntryKind.CUSTOMER_REPLY, "word " * 40, None, "word " * 27 + "word…"),
    ],
    ids=["one line", "state change", "empty description shows the title", "cut at a word"],
)
def test_preview(kind: EntryKind, text: str, state_to: str | None, expected: str) -> None:
    """The preview is the entry on one line, never longer than the limit."""
    shown = preview(kind, text, state_to=state_to, title="Printer")
    assert expected == shown
    assert len(shown) <= 140


def test_entry_ids_round_trip_and_reject_anything_else() -> None:
    """Entry ids are ``e<number>``; other strings are not entry ids."""
    assert 42 == parse_entry_id(entry_id(42))
    assert [None, None, None, None] == [parse_entry_id(v) for v in ("42", "e0", "e-1", "r-1")]


@pytest.mark.parametrize(
    ("kind", "created_by", "expected"),
    [
        (EntryKind.TEAMMATE_REPLY, "customer", True),
        (EntryKind.STATE_CHANGED, "customer", True),
        (EntryKind.TICKET_CREATED, "teammate", True),
        (EntryKind.TICKET_CREATED, "customer", False),
        (EntryKind.CUSTOMER_REPLY, "teammate", False),
    ],
)
def test_news_from_the_help_desk_waits_for_a_receipt(kind: EntryKind, created_by: str, expected: bool) -> None:
    """Teammate replies, state changes and teammate-created tickets are unseen until a receipt covers them."""
    assert expected == counts_as_unseen(kind, ticket_created_by=created_by)
