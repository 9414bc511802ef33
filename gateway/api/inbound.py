"""``POST /v1/inbound`` (raw messages over HTTP) and the quarantine routes."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.concurrency import run_in_threadpool

from gateway.app import Gateway
from gateway.errors import MessageTooBig
from inbound.inbox import StoredInbound
from inbound.rejections import http_status

__all__ = ["inbound_json", "router_for"]

#: The only body type ``POST /v1/inbound`` takes.
RFC822 = "message/rfc822"


def inbound_json(message: StoredInbound, *, with_raw: bool = False) -> dict[str, Any]:
    """A stored inbound message as the API and the CLI show it."""
    data: dict[str, Any] = {
        "id": message.pk,
        "received_at": message.received_at.isoformat(),
        "status": message.status,
        "detail": message.detail,
        "mail_from": message.mail_from,
        "rcpt_to": list(message.rcpt_to),
        "from": message.from_addr,
        "subject": message.subject,
        "message_id": message.message_id,
        "ticket_key": message.ticket_key,
        "threaded_by": message.threaded_by,
        "attachments": list(message.attachments),
        "size": len(message.raw),
    }
    if with_raw:
        data["raw"] = message.raw.decode("utf-8", "replace")
    return data


def router_for(gw: Gateway) -> APIRouter:
    """Routes for HTTP-delivered inbound mail and the quarantine."""
    router = APIRouter(tags=["inbound"])
    limit = gw.settings.max_message_bytes

    @router.post("/v1/inbound", status_code=status.HTTP_202_ACCEPTED)
    async def post_inbound(
        request: Request,
        recipient: Annotated[list[str] | None, Query(description="Envelope recipients: reply addresses")] = None,
        mail_from: Annotated[str, Query(description="Envelope sender, '<>' for a bounce; empty if unknown")] = "",
    ) -> dict[str, Any]:
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
            refusal = await run_in_threadpool(gw.recipients.refusal, address)
            if refusal is not None:
                raise HTTPException(http_status(refusal) or 422, f"recipient: {refusal}")
        # Committed before the answer; handed to the pipeline after the commit (or by the sweeper).
        pk = await run_in_threadpool(
            lambda: gw.inbound.save_raw(mail_from=mail_from, rcpt_to=recipient, raw=bytes(raw), now=gw.clock())
        )
        return {"id": pk, "status": "received"}

    @router.get("/v1/quarantine")
    def list_quarantine(limit: int = Query(100, ge=1, le=1000)) -> dict[str, Any]:
        """Quarantined inbound messages, newest first, with why they are held."""
        return {"messages": [inbound_json(m) for m in gw.inbound.quarantined(limit=limit)]}

    @router.get("/v1/quarantine/{pk}")
    def show_quarantined(pk: int) -> dict[str, Any]:
        """One quarantined message, with its original source."""
        message = gw.inbound.get(pk)
        if message is None or message.status != "quarantined":
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no quarantined message {pk}")
        return inbound_json(message, with_raw=True)

    @router.post("/v1/quarantine/{pk}/release")
    def release(pk: int) -> dict[str, Any]:
        """Release a quarantined message: it goes through the pipeline again, without the sender check."""
        if not gw.inbound.release(pk, now=gw.clock()):
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no quarantined message {pk}")
        return {"id": pk, "status": "released"}

    return router
