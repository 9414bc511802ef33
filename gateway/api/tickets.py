"""Ticket routes: the thread as the Messenger shows it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, status

from gateway.app import Gateway
from gateway.models import Entry

__all__ = ["entry_json", "router_for"]


def entry_json(entry: Entry) -> dict[str, Any]:
    """A thread entry as the API shows it."""
    data: dict[str, Any] = {"kind": entry.kind.value, "text": entry.text, "created_at": entry.created_at.isoformat()}
    if entry.author_name:
        data["author"] = {"name": entry.author_name}
    if entry.channel:
        data["channel"] = entry.channel
    if entry.state_to:
        data["state"] = {"from": entry.state_from, "to": entry.state_to}
    return data


def router_for(gw: Gateway) -> APIRouter:
    """Routes for tickets and their threads."""
    router = APIRouter(tags=["tickets"])

    @router.get("/v1/tickets/{ticket_id}/thread")
    def get_thread(ticket_id: str) -> dict[str, Any]:
        """The ticket (id, title, state) and its entries, oldest first."""
        ticket = gw.tickets.get(ticket_id)
        if ticket is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no ticket {ticket_id!r}")
        return {
            "ticket": {"id": ticket.id, "title": ticket.title, "state": ticket.state.value},
            "entries": [entry_json(e) for e in gw.tickets.thread(ticket.key)],
        }

    return router
