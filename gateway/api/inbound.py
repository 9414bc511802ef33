"""``POST /v1/inbound`` (raw messages over HTTP) and the quarantine routes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Request, status
from fastapi.concurrency import run_in_threadpool
from pydantic import AfterValidator, Field

from gateway.api.errors import error_responses
from gateway.api.responses import (
    InboundMessageOut,
    InboundReceivedOut,
    QuarantinedMessageOut,
    QuarantineOut,
    ReleasedOut,
)
from gateway.api.schemas import MAX_ADDRESS_LENGTH, MAX_ROW_ID, identifier
from gateway.errors import MessageTooBig
from inbound.inbox import InboundStore
from inbound.recipients import RecipientCheck
from inbound.rejections import http_status

__all__ = ["router_for"]

#: An envelope address as ``inbound_messages.mail_from`` holds it: at most 320 characters, no control characters.
Address = Annotated[str, Field(max_length=MAX_ADDRESS_LENGTH), AfterValidator(identifier)]

#: The only body type ``POST /v1/inbound`` takes.
RFC822 = "message/rfc822"


def router_for(
    *, inbound: InboundStore, recipients: RecipientCheck, clock: Callable[[], datetime], max_message_bytes: int
) -> APIRouter:
    """Routes for HTTP-delivered inbound mail and the quarantine."""
    router = APIRouter(tags=["inbound"])
    limit = max_message_bytes

    @router.post(
        "/v1/inbound",
        status_code=status.HTTP_202_ACCEPTED,
        responses=error_responses(400, 401, 413, 415, 422, 503),
        openapi_extra={"requestBody": {
            "required": True, "content": {RFC822: {"schema": {"type": "string", "format": "binary"}}},
        }},
    )
    async def post_inbound(
        request: Request,
        recipient: Annotated[list[Address] | None, Query(description="Envelope recipients: reply addresses")] = None,
        mail_from: Annotated[Address, Query(description="Envelope sender, '<>' for a bounce; empty if unknown")] = "",
    ) -> InboundReceivedOut:
        """Store a raw message (``Content-Type: message/rfc822``) and run it through the inbound pipeline.

        Without ``recipient``, the pipeline threads by the To/Cc reply token or by In-Reply-To/References.
        """
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != RFC822:
            raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
                                f"Content-Type must be {RFC822}, got {ctype or 'none'!r}")
        raw = bytearray()
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > limit:
                error = MessageTooBig(f"message too big: this server accepts at most {limit} bytes")
                raise HTTPException(http_status(error) or 413, str(error))
        if not raw.strip():
            raise HTTPException(status.HTTP_400_BAD_REQUEST, "empty message")
        recipient = recipient or []
        for address in recipient:
            refusal = await run_in_threadpool(recipients.refusal, address)
            if refusal is not None:
                raise HTTPException(http_status(refusal) or 422, f"recipient: {refusal}")
        # Committed before the answer; handed to the pipeline after the commit (or by the sweeper).
        pk = await run_in_threadpool(
            lambda: inbound.save_raw(mail_from=mail_from, rcpt_to=recipient, raw=bytes(raw), now=clock())
        )
        return InboundReceivedOut(id=pk, status="received")

    @router.get("/v1/quarantine", responses=error_responses(401, 422, 503))
    def list_quarantine(limit: int = Query(100, ge=1, le=1000)) -> QuarantineOut:
        """Quarantined inbound messages, newest first, with why they are held."""
        return QuarantineOut(messages=[InboundMessageOut.of(m) for m in inbound.quarantined(limit=limit)])

    @router.get("/v1/quarantine/{pk}", responses=error_responses(401, 404, 422, 503))
    def show_quarantined(pk: Annotated[int, Path(ge=1, le=MAX_ROW_ID)]) -> QuarantinedMessageOut:
        """One quarantined message, with its original source."""
        message = inbound.get(pk)
        if message is None or message.status != "quarantined":
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no quarantined message {pk}")
        return QuarantinedMessageOut.of(message)

    @router.post("/v1/quarantine/{pk}/release", responses=error_responses(401, 404, 422, 503))
    def release(pk: Annotated[int, Path(ge=1, le=MAX_ROW_ID)]) -> ReleasedOut:
        """Release a quarantined message: it goes through the pipeline again, without the sender check."""
        if not inbound.release(pk, now=clock()):
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no quarantined message {pk}")
        return ReleasedOut(id=pk, status="released")

    return router
