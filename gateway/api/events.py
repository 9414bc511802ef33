"""``POST /v1/events``: the help desk's ticket events."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Body, Response, status

from gateway.api.errors import error_responses
from gateway.api.responses import EventAppliedOut
from gateway.api.schemas import EventIn, TicketCreatedIn, TicketReplyIn
from outbound.events import Applied, EventApplier

__all__ = ["router_for"]


def router_for(*, events: EventApplier, clock: Callable[[], datetime]) -> APIRouter:
    """Routes for help-desk events."""
    router = APIRouter(tags=["events"])

    @router.post(
        "/v1/events",
        status_code=status.HTTP_202_ACCEPTED,
        responses={
            202: {"headers": {"Idempotent-Replayed": {
                "description": "`true` when the event id was seen before: nothing changed, the first answer again",
                "schema": {"type": "string"},
            }}},
            **error_responses(401, 404, 409, 422, 503),
        },
    )
    def post_event(response: Response, event: Annotated[EventIn, Body()]) -> EventAppliedOut:
        """Apply a ticket event (``ticket.created``, ``ticket.reply``, ``ticket.state_changed``).

        The same event id again changes nothing and answers the same. An event for an unknown
        ticket (404), with a reply id seen before (409) or an impossible state change (409 when
        ``from`` is not the ticket's state, 422 for an unknown state or ``from`` = ``to``) is
        refused with ``{"error", "code"}`` and nothing of it is applied.
        """
        now = clock()
        applied: Applied
        if isinstance(event, TicketCreatedIn):
            applied = events.ticket_created(event.record(), now=now)
        elif isinstance(event, TicketReplyIn):
            applied = events.ticket_reply(event.record(), now=now)
        else:
            applied = events.state_changed(event.record(), now=now)
        if applied.replayed:
            response.headers["Idempotent-Replayed"] = "true"
        return EventAppliedOut.model_validate(applied.response)

    return router
