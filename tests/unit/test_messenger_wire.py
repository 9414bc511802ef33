"""The Messenger's JSON shapes (pure): keys that do not apply are left out; the stream writes what the API answers."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from gateway.messenger.store import ChangeView
from gateway.messenger.view import Pill, ThreadEntry, ThreadPage, TicketSummary
from gateway.messenger.wire import ThreadEntryOut, ThreadPageOut, frame
from gateway.models import EntryKind
from gateway.store.changes import Change, ChangeKind

AT = datetime(2026, 11, 26, 10, 5, tzinfo=UTC)
PILL = Pill(key=7, id="T-1", title="Printer prints blank pages", state="in_progress", customer_id="c-1")
SUMMARY = TicketSummary(pill=PILL, last_activity_at=AT, preview="Try a new cartridge.", unseen_count=1)


def shown(entry: ThreadEntry) -> dict[str, Any]:
    """The entry as the thread route writes it."""
    return dict(json.loads(ThreadEntryOut.of(entry).model_dump_json(by_alias=True, exclude_unset=True)))


def test_an_entry_has_only_the_keys_that_apply() -> None:
    """A customer reply has no reply_id, author, state or seen_at keys at all (not null ones)."""
    entry = ThreadEntry(key=3, kind=EntryKind.CUSTOMER_REPLY, text="Still blank.", created_at=AT, channel="email")
    expected = {
        "id": "e3", "kind": "customer_reply", "text": "Still blank.", "created_at": "2026-11-26T10:05:00+00:00",
        "channel": "email",
    }
    assert expected == shown(entry)


def test_a_teammate_reply_and_a_state_change_carry_their_keys_in_order() -> None:
    """Teammate replies carry reply_id and author; a new ticket's state has ``from: null``; seen_at once seen."""
    teammate = ThreadEntry(key=4, kind=EntryKind.TEAMMATE_REPLY, text="Try a new cartridge.", created_at=AT,
                           author_name="Grace", reply_id="r-1", seen_at=AT)
    created = ThreadEntry(key=1, kind=EntryKind.TICKET_CREATED, text="", created_at=AT, state_to="submitted")
    assert ["id", "kind", "text", "created_at", "reply_id", "author", "seen_at"] == list(shown(teammate))
    assert ({"name": "Grace"}, "2026-11-26T10:05:00+00:00") == (shown(teammate)["author"], shown(teammate)["seen_at"])
    assert {"from": None, "to": "submitted"} == shown(created)["state"]


def test_the_stream_writes_the_entry_and_row_the_api_answers() -> None:
    """A frame's ``entry`` is byte for byte the thread's entry; ``ticket`` is the Recent-tickets row."""
    entry = ThreadEntry(key=4, kind=EntryKind.TEAMMATE_REPLY, text="Try a new cartridge.", created_at=AT,
                        author_name="Grace", reply_id="r-1")
    page = ThreadPageOut.of(ThreadPage(pill=PILL, entries=(entry,), older=None, newer=None))
    thread = page.model_dump_json(by_alias=True, exclude_unset=True)
    data = frame(ChangeView(change=Change(9, 7, ChangeKind.ENTRY, 4), ticket=SUMMARY, entry=entry)).data.decode()
    head, _, body = data.partition("data: ")
    assert "id: 9\nevent: entry\n" == head
    sent = body.removesuffix("\n\n")
    entry_text = thread.split('"entries":[', 1)[1].split('],"page":', 1)[0]
    assert sent.endswith(',"entry":' + entry_text + "}")
    row = {"id": "T-1", "title": "Printer prints blank pages", "state": "in_progress",
           "last_activity_at": "2026-11-26T10:05:00+00:00", "preview": "Try a new cartridge.", "unseen_count": 1}
    assert row == json.loads(sent)["ticket"]


def test_a_receipt_is_a_ticket_event() -> None:
    """A change without an entry is a ``ticket`` event naming what changed."""
    data = frame(ChangeView(change=Change(10, 7, ChangeKind.SEEN, None), ticket=SUMMARY, entry=None)).data.decode()
    assert data.startswith("id: 10\nevent: ticket\ndata: {")
    assert "seen" == json.loads(data.split("data: ", 1)[1])["change"]
