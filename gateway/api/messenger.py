"""Messenger routes: Recent tickets, the thread with its pill, seen receipts, Messenger keys."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, status
from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.concurrency import run_in_threadpool

from gateway.api.access import Principal
from gateway.api.errors import InvalidFields, error_responses
from gateway.api.schemas import Identifier, InstantIn, well_formed
from gateway.errors import UnknownEntry
from gateway.messenger import tokens
from gateway.messenger.store import MessengerStore
from gateway.messenger.view import Pill, parse_entry_id
from gateway.messenger.wire import MessengerTokenOut, RecentTicketsOut, SeenOut, ThreadPageOut, TicketSummaryOut

__all__ = ["router_for"]

#: Recent tickets returned when the request does not say how many.
DEFAULT_RECENT_LIMIT = 20
#: Thread entries per page when the request does not say how many.
DEFAULT_PAGE_LIMIT = 50
#: How long a Messenger key lives when the help desk does not say.
DEFAULT_TOKEN_TTL_SECONDS = 3600
#: The longest a Messenger key may live.
MAX_TOKEN_TTL_SECONDS = 30 * 24 * 3600


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class SeenIn(_Strict):
    """A seen receipt: up to a reply (``up_to``) or everything sent before an instant (``at``)."""

    customer_id: Identifier
    up_to: Identifier | None = None
    at: InstantIn | None = None

    @model_validator(mode="after")
    def _says_what(self) -> SeenIn:
        if self.up_to is None and self.at is None:
            raise ValueError("give up_to (a reply id) or at (an ISO 8601 instant)")
        return self


class TokenIn(_Strict):
    """A request for a Messenger key acting for ``customer_id``."""

    customer_id: Identifier
    ttl_seconds: int = Field(default=DEFAULT_TOKEN_TTL_SECONDS, ge=60, le=MAX_TOKEN_TTL_SECONDS)


def _cursor(name: str, value: str | None) -> int | None:
    if value is None:
        return None
    key = parse_entry_id(value)
    if key is None:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"{name}: not an entry id: {value!r}")
    return key


def router_for(
    *, messenger: MessengerStore, clock: Callable[[], datetime], messenger_secret: bytes, messenger_url: str,
    principal: Any,
) -> APIRouter:
    """Routes the Messenger (and the help desk) read; ``principal`` resolves who is asking."""
    router = APIRouter(tags=["messenger"])
    who_asks = Depends(principal)
    # The reads are coroutines that take the store in one hop to the thread pool: as plain functions
    # FastAPI would hop to a thread for the endpoint and again to validate its answer, and under write
    # load each hop back waits for the interpreter lock behind the writers (bench/bench_reads.py).

    def visible_ticket(ticket_id: str, who: Principal) -> Pill:
        pill = messenger.pill(ticket_id) if well_formed(ticket_id) else None
        if pill is None or not who.may_read(pill.customer_id):
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no ticket {ticket_id!r}")
        return pill

    @router.get("/v1/customers/{customer_id}/recent-tickets", responses=error_responses(401, 404, 422, 503))
    async def recent_tickets(
        customer_id: str, who: Principal = who_asks, limit: int = Query(DEFAULT_RECENT_LIMIT, ge=1, le=100)
    ) -> RecentTicketsOut:
        """The customer's tickets, most recent activity first; stream from ``last_event_id`` to stay current."""
        if not who.may_read(customer_id) or not well_formed(customer_id):
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no customer {customer_id!r}")

        def read() -> RecentTicketsOut:
            cursor = messenger.changes.latest(customer_id)  # read first: later changes reach the stream
            found = messenger.recent_tickets(customer_id, limit=limit)
            return RecentTicketsOut(
                customer_id=customer_id, tickets=[TicketSummaryOut.of(t) for t in found], last_event_id=cursor
            )

        return await run_in_threadpool(read)

    @router.get(
        "/v1/tickets/{ticket_id:path}/thread",
        response_model_exclude_unset=True,  # an entry leaves out the keys that do not apply to it
        responses=error_responses(401, 404, 422, 503),
    )
    async def thread(
        ticket_id: str,
        who: Principal = who_asks,
        limit: int = Query(DEFAULT_PAGE_LIMIT, ge=1, le=200),
        before: str | None = Query(None, description="an entry id: the page of entries before it"),
        after: str | None = Query(None, description="an entry id: the page of entries after it"),
    ) -> ThreadPageOut:
        """The ticket pill and a page of its entries, oldest first (the newest page without a cursor)."""
        if before is not None and after is not None:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "give before or after, not both")
        older_than, newer_than = _cursor("before", before), _cursor("after", after)

        def read() -> ThreadPageOut:
            pill = visible_ticket(ticket_id, who)
            return ThreadPageOut.of(messenger.thread_page(pill, limit=limit, before=older_than, after=newer_than))

        return await run_in_threadpool(read)

    @router.post("/v1/tickets/{ticket_id:path}/seen", responses=error_responses(401, 403, 404, 422, 503))
    def seen(ticket_id: str, receipt: SeenIn, who: Principal = who_asks) -> SeenOut:
        """Record that the customer saw the thread up to a reply, or up to an instant (idempotent)."""
        pill = visible_ticket(ticket_id, who)
        if receipt.customer_id != pill.customer_id or not who.may_read(receipt.customer_id):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, f"customer_id: ticket {ticket_id!r} is not {receipt.customer_id!r}'s"
            )
        try:
            newly = messenger.mark_seen(pill, up_to=receipt.up_to, at=receipt.at, now=clock())
        except UnknownEntry as exc:
            raise InvalidFields(f"up_to: {exc}", fields=["up_to"]) from None
        summary = messenger.summaries([pill.key])[pill.key]
        return SeenOut(ticket_id=pill.id, newly_seen=newly, unseen_count=summary.unseen_count)

    @router.post(
        "/v1/messenger-tokens", status_code=status.HTTP_201_CREATED, responses=error_responses(401, 403, 422)
    )
    def issue_token(request: TokenIn, who: Principal = who_asks) -> MessengerTokenOut:
        """Issue a Messenger key that may read only ``customer_id``'s tickets (help-desk keys only)."""
        if not who.is_helpdesk:
            raise HTTPException(status.HTTP_403_FORBIDDEN, "only the help desk issues Messenger keys")
        expires_at = clock() + timedelta(seconds=request.ttl_seconds)
        token = tokens.issue(request.customer_id, expires_at=expires_at, secret=messenger_secret)
        return MessengerTokenOut(
            token=token,
            customer_id=request.customer_id,
            expires_at=expires_at.isoformat(),
            demo_url=f"{messenger_url}#token={token}",
        )

    return router
