"""The conversation so far, as reply and state-change emails show it below the new content (pure).

Only entry kinds the customer sees in the Messenger's thread go in (:data:`HISTORY_KINDS`), newest
first, capped by a number of entries and of characters (:class:`HistoryLimits`); what the caps
leave out is counted, so the email can say how much more the Messenger has. The store side reads
the recent entries inside the event's (or the unseen check's) transaction:
``outbound.event_store.recent_entries``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace

from gateway.models import EntryKind

__all__ = [
    "DEFAULT_HISTORY_MAX_CHARS",
    "DEFAULT_HISTORY_MAX_ENTRIES",
    "HISTORY_KINDS",
    "NO_HISTORY",
    "History",
    "HistoryEntry",
    "HistoryLimits",
    "history_context",
    "recent_history",
]

#: Entries an email shows of the conversation so far (``GATEWAY_HISTORY_MAX_ENTRIES``).
DEFAULT_HISTORY_MAX_ENTRIES = 5
#: Characters of entry text an email shows of the conversation so far (``GATEWAY_HISTORY_MAX_CHARS``).
DEFAULT_HISTORY_MAX_CHARS = 2000
#: The entry kinds the Messenger's thread shows the customer: the only ones an email may repeat.
#: A kind added to the thread for teammates only (an internal note) stays out unless listed here.
HISTORY_KINDS = frozenset({
    EntryKind.TICKET_CREATED, EntryKind.TEAMMATE_REPLY, EntryKind.CUSTOMER_REPLY, EntryKind.STATE_CHANGED,
})
#: What a cut entry ends with.
ELLIPSIS = "…"


@dataclass(frozen=True, kw_only=True)
class HistoryLimits:
    """How much of the conversation an email shows."""

    max_entries: int = DEFAULT_HISTORY_MAX_ENTRIES
    max_chars: int = DEFAULT_HISTORY_MAX_CHARS

    def __post_init__(self) -> None:
        if self.max_entries < 0 or self.max_chars < 0:
            raise ValueError(f"history limits must not be negative: {self!r}")


@dataclass(frozen=True, kw_only=True)
class HistoryEntry:
    """One entry of the thread as the history shows it."""

    key: int
    kind: EntryKind
    text: str
    created_at: datetime
    author_name: str | None = None
    state_to: str | None = None


@dataclass(frozen=True)
class History:
    """The entries to show, newest first, and how many older ones the caps left out."""

    entries: tuple[HistoryEntry, ...] = ()
    hidden: int = 0


#: An email without history (a ticket's first email, or limits of zero).
NO_HISTORY = History()


def recent_history(newest_first: Sequence[HistoryEntry], *, total: int, limits: HistoryLimits) -> History:
    """The entries to show from ``newest_first`` (the ticket's most recent entries, at least
    ``limits.max_entries`` of them when there are that many) out of ``total`` shown-kind entries.

    Entries of other kinds are dropped. Entry text counts against ``limits.max_chars``: the entry
    that crosses it is cut at a word with an ellipsis, and the ones after it are left out.
    """
    shown: list[HistoryEntry] = []
    budget = limits.max_chars
    for entry in newest_first:
        if len(shown) >= limits.max_entries:
            break
        if entry.kind not in HISTORY_KINDS:
            continue
        text = entry.text.strip()
        if len(text) > budget:
            if budget < 20 and shown:
                break
            text = _cut(text, budget)
        budget -= len(text)
        shown.append(HistoryEntry(
            key=entry.key, kind=entry.kind, text=text, created_at=entry.created_at, author_name=entry.author_name,
            state_to=entry.state_to,
        ))
        if budget <= 0:
            break
    return History(tuple(shown), max(0, total - len(shown)))


def _cut(text: str, size: int) -> str:
    if size <= 0:
        return ELLIPSIS
    head = text[:size]
    space = head.rfind(" ")
    if space > size // 2:
        head = head[:space]
    return head.rstrip() + ELLIPSIS


def history_context(history: History) -> SimpleNamespace:
    """The history as the templates read it (attributes, not dict keys: see ``drafts.ticket_context``)."""
    return SimpleNamespace(
        entries=[
            SimpleNamespace(
                kind=e.kind.value, text=e.text, created_at=e.created_at, author=e.author_name or "",
                state=e.state_to or "",
            )
            for e in history.entries
        ],
        hidden=history.hidden,
    )
