"""The Messenger's JSON shapes and stream frames (pure): one place, so the API and the stream agree."""

from __future__ import annotations

import json
from typing import Any

from gateway.messenger.hub import Frame
from gateway.messenger.store import ChangeView
from gateway.messenger.view import Pill, ThreadEntry, ThreadPage, TicketSummary
from gateway.store.changes import ChangeKind

__all__ = ["entry_json", "frame", "page_json", "pill_json", "summary_json"]


def pill_json(pill: Pill) -> dict[str, Any]:
    """The ticket pill: id, title, state."""
    return {"id": pill.id, "title": pill.title, "state": pill.state}


def summary_json(summary: TicketSummary) -> dict[str, Any]:
    """One Recent-tickets row."""
    return {
        **pill_json(summary.pill),
        "last_activity_at": summary.last_activity_at.isoformat(),
        "preview": summary.preview,
        "unseen_count": summary.unseen_count,
    }


def entry_json(entry: ThreadEntry) -> dict[str, Any]:
    """A thread entry; customer replies by email carry ``channel: "email"``."""
    data: dict[str, Any] = {
        "id": entry.id,
        "kind": entry.kind.value,
        "text": entry.text,
        "created_at": entry.created_at.isoformat(),
    }
    if entry.reply_id:
        data["reply_id"] = entry.reply_id
    if entry.author_name:
        data["author"] = {"name": entry.author_name}
    if entry.channel:
        data["channel"] = entry.channel
    if entry.state_to:
        data["state"] = {"from": entry.state_from, "to": entry.state_to}
    if entry.seen_at:
        data["seen_at"] = entry.seen_at.isoformat()
    return data


def page_json(page: ThreadPage) -> dict[str, Any]:
    """A thread page; ``ticket`` repeats the pill for clients of the first version of this endpoint."""
    return {
        "pill": pill_json(page.pill),
        "ticket": pill_json(page.pill),
        "entries": [entry_json(e) for e in page.entries],
        "page": {"older": page.older, "newer": page.newer},
    }


def frame(view: ChangeView) -> Frame:
    """A change as one Server-Sent Event: ``entry`` (with the entry added) or ``ticket``."""
    data: dict[str, Any] = {"ticket": summary_json(view.ticket)}
    if view.entry is not None:
        name = "entry"
        data["entry"] = entry_json(view.entry)
    else:
        name = "ticket"
        data["change"] = "seen" if view.change.kind == ChangeKind.SEEN else "state"
    body = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return Frame(view.change.pk, f"id: {view.change.pk}\nevent: {name}\ndata: {body}\n\n".encode())
