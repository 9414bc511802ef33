"""The Messenger's JSON shapes (pydantic models) and stream frames: one place, so the API and the stream agree.

The Messenger routes answer these models and the event stream writes them as its frames' data.
A thread entry leaves out the keys that do not apply to it (no ``reply_id`` on a customer reply,
no ``seen_at`` before it is seen): :class:`ThreadEntryOut` sets only those that do, and the models
holding entries are serialised with ``by_alias=True, exclude_unset=True``, on the API and in the
stream alike. Every other field is always set, so ``null`` still shows where it always did
(``page.older``, ``state.from``).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AliasChoices, Field

from gateway.messenger.hub import Frame
from gateway.messenger.store import ChangeView
from gateway.messenger.view import EntryAttachment, Pill, ThreadEntry, ThreadPage, TicketSummary
from gateway.models import EntryKind
from gateway.store.changes import ChangeKind
from gateway.wire_types import Absent, Instant, OutModel

__all__ = [
    "AuthorOut",
    "EntryAttachmentOut",
    "EntryEventOut",
    "MessengerTokenOut",
    "PageCursorsOut",
    "PillOut",
    "RecentTicketsOut",
    "SeenOut",
    "StateChangeOut",
    "ThreadEntryOut",
    "ThreadPageOut",
    "TicketEventOut",
    "TicketSummaryOut",
    "frame",
]


class PillOut(OutModel):
    """The ticket pill: id, title, state."""

    id: str
    title: str
    state: str

    @classmethod
    def of(cls, pill: Pill) -> PillOut:
        """The pill as the Messenger shows it."""
        return cls(id=pill.id, title=pill.title, state=pill.state)


class TicketSummaryOut(OutModel):
    """One Recent-tickets row: the pill's fields, the latest activity, a preview of it and the unseen count."""

    id: str
    title: str
    state: str
    last_activity_at: Instant
    preview: str
    unseen_count: int

    @classmethod
    def of(cls, summary: TicketSummary) -> TicketSummaryOut:
        """The row for ``summary``."""
        pill = summary.pill
        return cls(
            id=pill.id,
            title=pill.title,
            state=pill.state,
            last_activity_at=summary.last_activity_at.isoformat(),
            preview=summary.preview,
            unseen_count=summary.unseen_count,
        )


class AuthorOut(OutModel):
    """The teammate who wrote a reply."""

    name: str


class StateChangeOut(OutModel):
    """A state change: ``from`` is null on the entry that records a new ticket."""

    state_from: str | None = Field(serialization_alias="from", validation_alias=AliasChoices("from", "state_from"))
    state_to: str = Field(serialization_alias="to", validation_alias=AliasChoices("to", "state_to"))


class EntryAttachmentOut(OutModel):
    """An attachment (or inline image) of a customer's email reply."""

    filename: str | None
    content_type: str = Field(description="as the sender declared it; the download is typed by its bytes")
    size: int = Field(description="bytes")
    inline: bool = Field(description="an image shown in the body of an HTML reply")
    url: str = Field(description="relative to the API; the customer's Messenger key reads it (also as "
                     "`?access_token=`, for `<img>`)")

    @classmethod
    def of(cls, attachment: EntryAttachment) -> EntryAttachmentOut:
        """The attachment as the Messenger shows it."""
        return cls(filename=attachment.filename, content_type=attachment.content_type, size=attachment.size,
                   inline=attachment.inline, url=attachment.url)


class ThreadEntryOut(OutModel):
    """A thread entry; the keys after ``created_at`` are present only when they apply."""

    id: str = Field(description="the entry id: page cursors and seen receipts name entries by it")
    kind: EntryKind
    text: str
    created_at: Instant
    reply_id: str | Absent = Field(default=None, description="teammate replies: the help desk's id")
    author: AuthorOut | Absent = Field(default=None, description="teammate replies")
    channel: str | Absent = Field(default=None, description='customer replies by email: "email"')
    state: StateChangeOut | Absent = Field(default=None, description="state changes")
    seen_at: Instant | Absent = Field(default=None, description="once the customer has seen it")
    attachments: list[EntryAttachmentOut] | Absent = Field(
        default=None, description="customer replies by email with attachments or inline images"
    )
    html: str | Absent = Field(default=None, description="customer replies by email: sanitised HTML of the new part")
    signature: str | Absent = Field(default=None, description="customer replies by email: the signature split off")
    trimmed: str | Absent = Field(
        default=None, description='customer replies by email: the quoted history cut ("show trimmed")'
    )

    @classmethod
    def of(cls, entry: ThreadEntry) -> ThreadEntryOut:
        """The entry with only the keys that apply to it set (serialise with ``exclude_unset=True``)."""
        optional: dict[str, Any] = {}
        if entry.reply_id:
            optional["reply_id"] = entry.reply_id
        if entry.author_name:
            optional["author"] = AuthorOut(name=entry.author_name)
        if entry.channel:
            optional["channel"] = entry.channel
        if entry.state_to:
            optional["state"] = StateChangeOut(state_from=entry.state_from, state_to=entry.state_to)
        if entry.seen_at:
            optional["seen_at"] = entry.seen_at.isoformat()
        if entry.attachments:
            optional["attachments"] = [EntryAttachmentOut.of(a) for a in entry.attachments]
        for part in ("html", "signature", "trimmed"):
            if getattr(entry, part):
                optional[part] = getattr(entry, part)
        return cls(id=entry.id, kind=entry.kind, text=entry.text, created_at=entry.created_at.isoformat(), **optional)


class PageCursorsOut(OutModel):
    """Cursors to the neighbouring pages (entry ids), null at either end of the thread."""

    older: str | None
    newer: str | None


class ThreadPageOut(OutModel):
    """A page of a thread, oldest first; ``ticket`` repeats the pill for clients of the first version."""

    pill: PillOut
    ticket: PillOut
    entries: list[ThreadEntryOut]
    page: PageCursorsOut

    @classmethod
    def of(cls, page: ThreadPage) -> ThreadPageOut:
        """The page as the thread route answers it (serialise with ``exclude_unset=True``)."""
        pill = PillOut.of(page.pill)
        return cls(
            pill=pill,
            ticket=pill,
            entries=[ThreadEntryOut.of(e) for e in page.entries],
            page=PageCursorsOut(older=page.older, newer=page.newer),
        )


class RecentTicketsOut(OutModel):
    """A customer's Recent tickets, and the stream position to follow them from."""

    customer_id: str
    tickets: list[TicketSummaryOut] = Field(description="most recent activity first")
    last_event_id: int = Field(description="stream from here (Last-Event-ID) to miss no later change")


class SeenOut(OutModel):
    """The answer to a seen receipt."""

    ticket_id: str
    newly_seen: int = Field(description="entries this receipt marked seen (0 for a repeat)")
    unseen_count: int = Field(description="entries of the ticket still unseen")


class MessengerTokenOut(OutModel):
    """A Messenger key reading one customer's tickets, and the demo Messenger opened with it."""

    token: str
    customer_id: str
    expires_at: Instant
    demo_url: str


class EntryEventOut(OutModel):
    """Stream event ``entry``: an entry was added; ``ticket`` is its Recent-tickets row now."""

    ticket: TicketSummaryOut
    entry: ThreadEntryOut


class TicketEventOut(OutModel):
    """Stream event ``ticket``: the ticket's row changed without a new entry (a quiet state change, a receipt)."""

    ticket: TicketSummaryOut
    change: Literal["state", "seen"]


def frame(view: ChangeView) -> Frame:
    """A change as one Server-Sent Event: ``entry`` (with the entry added) or ``ticket``."""
    ticket = TicketSummaryOut.of(view.ticket)
    data: EntryEventOut | TicketEventOut
    if view.entry is not None:
        name, data = "entry", EntryEventOut(ticket=ticket, entry=ThreadEntryOut.of(view.entry))
    else:
        change: Literal["state", "seen"] = "seen" if view.change.kind == ChangeKind.SEEN else "state"
        name, data = "ticket", TicketEventOut(ticket=ticket, change=change)
    body = data.model_dump_json(by_alias=True, exclude_unset=True)
    return Frame(view.change.pk, f"id: {view.change.pk}\nevent: {name}\ndata: {body}\n\n".encode())
