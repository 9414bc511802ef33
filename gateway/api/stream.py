"""``GET /v1/customers/{customer_id}/events``: the Messenger's live updates as Server-Sent Events."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.responses import StreamingResponse

from gateway.api.access import Principal
from gateway.api.errors import error_responses
from gateway.api.openapi import schema_ref
from gateway.api.schemas import MAX_ROW_ID, well_formed
from gateway.messenger.hub import Hub
from gateway.messenger.wire import EntryEventOut, TicketEventOut

__all__ = ["FRAME_MODELS", "router_for"]

#: Milliseconds a disconnected ``EventSource`` waits before it reconnects (and resumes).
RETRY_MS = 2000
#: The data of the stream's events, named in the OpenAPI document by reference.
FRAME_MODELS = (EntryEventOut, TicketEventOut)
#: One event of the stream, for the OpenAPI document (``itemSchema``, as OpenAPI 3.2 describes streams).
_EVENT_SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "description": "the change id: resume after it with Last-Event-ID"},
        "event": {"type": "string", "enum": ["entry", "ticket"]},
        "data": {
            "type": "string",
            "contentMediaType": "application/json",
            "contentSchema": {"oneOf": [schema_ref(EntryEventOut), schema_ref(TicketEventOut)]},
        },
        "retry": {"type": "integer", "description": "once, first: milliseconds to wait before reconnecting"},
    },
}


def _resume_from(header: str | None, query: int | None) -> int | None:
    if header is None or not header.strip():
        return query
    try:
        value = int(header.strip())
    except ValueError:
        value = -1
    if not 0 <= value <= MAX_ROW_ID:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"Last-Event-ID: not an event id: {header!r}")
    return value


def router_for(*, hub: Hub, principal: Any) -> APIRouter:
    """The event-stream route."""
    router = APIRouter(tags=["messenger"])
    who_asks = Depends(principal)

    @router.get(
        "/v1/customers/{customer_id}/events",
        response_class=StreamingResponse,
        responses={
            200: {
                "description": "Server-Sent Events: `entry` (data: EntryEventOut) and `ticket` (data: TicketEventOut); "
                f"first `retry: {RETRY_MS}` and a `: connected` comment, then `: keep-alive` comments when quiet",
                "content": {"text/event-stream": {"schema": {"type": "string"}, "itemSchema": _EVENT_SCHEMA}},
            },
            **error_responses(401, 404, 422),
        },
    )
    async def events(
        customer_id: str,
        request: Request,
        who: Principal = who_asks,
        last_event_id: int | None = Query(
            None, ge=0, le=MAX_ROW_ID, description="resume after this event (as Last-Event-ID)"
        ),
    ) -> StreamingResponse:
        """Every change to the customer's Recent tickets and threads, as it happens.

        Events: ``entry`` (``{"ticket": <recent-tickets row>, "entry": <thread entry>}``) and
        ``ticket`` (``{"ticket": ..., "change": "state" | "seen"}``). Each has an id; reconnect
        with ``Last-Event-ID`` (browsers do) or ``?last_event_id=`` to miss nothing.
        """
        if not who.may_read(customer_id) or not well_formed(customer_id):
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no customer {customer_id!r}")
        after = _resume_from(request.headers.get("last-event-id"), last_event_id)

        async def body() -> AsyncIterator[bytes]:
            frames = hub.stream(customer_id, after)
            first = True
            try:
                async for frame in frames:
                    if frame is not None:
                        yield frame.data
                    elif first:
                        yield f"retry: {RETRY_MS}\n: connected\n\n".encode()
                    else:
                        yield b": keep-alive\n\n"
                    first = False
            finally:
                await frames.aclose()

        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        return StreamingResponse(body(), media_type="text/event-stream", headers=headers)

    return router
