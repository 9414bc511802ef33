"""``GET /v1/customers/{customer_id}/events``: the Messenger's live updates as Server-Sent Events."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.responses import StreamingResponse

from gateway.api.access import Principal
from gateway.app import Gateway

__all__ = ["router_for"]

#: Milliseconds a disconnected ``EventSource`` waits before it reconnects (and resumes).
RETRY_MS = 2000


def _resume_from(header: str | None, query: int | None) -> int | None:
    if header is None or not header.strip():
        return query
    try:
        value = int(header.strip())
    except ValueError:
        value = -1
    if value < 0:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"Last-Event-ID: not an event id: {header!r}")
    return value


def router_for(gw: Gateway, *, principal: Any) -> APIRouter:
    """The event-stream route."""
    router = APIRouter(tags=["messenger"])
    who_asks = Depends(principal)

    @router.get("/v1/customers/{customer_id}/events", response_class=StreamingResponse)
    async def events(
        customer_id: str,
        request: Request,
        who: Principal = who_asks,
        last_event_id: int | None = Query(None, ge=0, description="resume after this event (as Last-Event-ID)"),
    ) -> StreamingResponse:
        """Every change to the customer's Recent tickets and threads, as it happens.

        Events: ``entry`` (``{"ticket": <recent-tickets row>, "entry": <thread entry>}``) and
        ``ticket`` (``{"ticket": ..., "change": "state" | "seen"}``). Each has an id; reconnect
        with ``Last-Event-ID`` (browsers do) or ``?last_event_id=`` to miss nothing.
        """
        if not who.may_read(customer_id):
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no customer {customer_id!r}")
        after = _resume_from(request.headers.get("last-event-id"), last_event_id)

        async def body() -> AsyncIterator[bytes]:
            frames = gw.hub.stream(customer_id, after)
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
