"""What the Messenger shows (pure): records of its view, entry ids, previews and the unseen rule."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from gateway.models import EntryKind

__all__ = [
    "PREVIEW_CHARS",
    "EntryAttachment",
    "Pill",
    "ThreadEntry",
    "ThreadPage",
    "TicketSummary",
    "counts_as_unseen",
    "entry_id",
    "parse_entry_id",
    "preview",
]

#: Longest preview of a ticket's latest entry in Recent tickets, in characters.
PREVIEW_CHARS = 140
#: Entries that tell the customer something new: unseen until a receipt covers them.
NOTIFYING_KINDS = frozenset({EntryKind.TEAMMATE_REPLY, EntryKind.STATE_CHANGED})
_ENTRY_ID = re.compile(r"^e([1-9][0-9]{0,17})$")
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True, kw_only=True)
class Pill:
    """The ticket pill pinned at the top of a thread."""

    key: int
    id: str
    title: str
    state: str
    customer_id: str


@dataclass(frozen=True, kw_only=True)
class TicketSummary:
    """One row of a customer's Recent tickets."""

    pill: Pill
    last_activity_at: datetime
    preview: str
    unseen_count: int


@dataclass(frozen=True, kw_only=True)
class EntryAttachment:
    """An attachment (or inline image) of a customer's email reply, and where to fetch it."""

    filename: str | None
    content_type: str
    size: int
    inline: bool
    url: str


@dataclass(frozen=True, kw_only=True)
class ThreadEntry:
    """One entry of a thread as the Messenger shows it; ``key`` orders entries (and pages)."""

    key: int
    kind: EntryKind
    text: str
    created_at: datetime
    author_name: str | None = None
    channel: str | None = None
    reply_id: str | None = None
    state_from: str | None = None
    state_to: str | None = None
    seen_at: datetime | None = None
    attachments: tuple[EntryAttachment, ...] = ()
    #: Customer email replies: the sanitised HTML of the new part, the signature and the trimmed history.
    html: str | None = None
    signature: str | None = None
    trimmed: str | None = None

    @property
    def id(self) -> str:
        """The entry's id in the Messenger (seen receipts and page cursors name entries by it)."""
        return entry_id(self.key)


@dataclass(frozen=True, kw_only=True)
class ThreadPage:
    """A page of a thread, oldest first; ``older``/``newer`` are cursors, None at either end."""

    pill: Pill
    entries: tuple[ThreadEntry, ...]
    older: str | None
    newer: str | None


def entry_id(key: int) -> str:
    """The Messenger's id for entry ``key``: ``e`` and the number."""
    return f"e{key}"


def parse_entry_id(value: str) -> int | None:
    """The entry number in ``value`` (an id from :func:`entry_id`), or None when it is not one."""
    match = _ENTRY_ID.match(value.strip())
    return int(match.group(1)) if match else None


def counts_as_unseen(kind: EntryKind, *, ticket_created_by: str) -> bool:
    """Whether an entry waits for a seen receipt: news from the help desk, not the customer's own words."""
    if kind == EntryKind.TICKET_CREATED:
        return ticket_created_by == "teammate"
    return kind in NOTIFYING_KINDS


def preview(kind: EntryKind, text: str, *, state_to: str | None, title: str, limit: int = PREVIEW_CHARS) -> str:
    """The latest entry, shortened to ``limit`` characters on one line (an ellipsis marks a cut)."""
    line = _SPACE.sub(" ", text).strip()
    if not line:
        if kind == EntryKind.STATE_CHANGED and state_to:
            line = "Ticket " + state_to.replace("_", " ")
        else:
            line = title
    if len(line) <= limit:
        return line
    cut = line[: limit - 1]
    space = cut.rfind(" ")
    if line[limit - 1] != " " and space > limit // 2:  # do not end in the middle of a word
        cut = cut[:space]
    return cut.rstrip(" ,.;:") + "…"
