"""One table from event errors to HTTP answers: ``{"error": <what is wrong>, "code": <class name>}``."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from gateway.errors import DuplicateReply, EventError, InvalidTransition, StateMismatch, UnknownState, UnknownTicket

__all__ = ["EVENT_ERRORS", "install_event_errors", "status_for"]

#: HTTP status per event error; the most specific class listed wins (409 for anything unlisted).
EVENT_ERRORS: dict[type[EventError], int] = {
    UnknownTicket: 404,  # the event names a ticket the gateway never got a ticket.created for
    DuplicateReply: 409,  # the reply id is already on a ticket, under another event id
    StateMismatch: 409,  # 'from' is not the ticket's current state: stale or out of order
    UnknownState: 422,  # 'from' or 'to' is not a state name
    InvalidTransition: 422,  # 'from' equals 'to'
    EventError: 409,  # e.g. ticket.created for a ticket id that exists under another event
}


def status_for(error: EventError) -> int:
    """The HTTP status for ``error``: its nearest class in :data:`EVENT_ERRORS`."""
    for cls in type(error).__mro__:
        if cls in EVENT_ERRORS:
            return EVENT_ERRORS[cls]
    return 409


def install_event_errors(app: FastAPI) -> None:
    """Answer every :class:`EventError` by :data:`EVENT_ERRORS`; nothing of the event was applied."""

    @app.exception_handler(EventError)
    async def event_error(request: Request, exc: EventError) -> JSONResponse:
        return JSONResponse({"error": str(exc), "code": type(exc).__name__}, status_code=status_for(exc))
