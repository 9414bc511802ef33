"""``POST /v1/events``: the help desk's ticket events."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response, status

from gateway.api.schemas import TicketCreatedIn
from gateway.app import Gateway

__all__ = ["router_for"]


def router_for(gw: Gateway) -> APIRouter:
    """Routes for help-desk events."""
    router = APIRouter(tags=["events"])

    @router.post("/v1/events", status_code=status.HTTP_202_ACCEPTED)
    def post_event(event: TicketCreatedIn, response: Response) -> dict[str, Any]:
        """Apply a ticket event; the same event id again changes nothing and answers the same."""
        applied = gw.notifier.ticket_created(event.record(), now=gw.clock())
        if applied.replayed:
            response.headers["Idempotent-Replayed"] = "true"
        return applied.response

    return router
