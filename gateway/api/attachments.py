"""``GET /v1/inbound/{id}/attachments/{n}``: an attachment or inline image, from the stored raw message.

The help desk's key reads any stored message's attachments; a Messenger key only those of a reply
that landed on one of its customer's tickets. Anything else answers 404, exactly as a message
that does not exist, so ids cannot be probed. The bytes are served as a download whose type was
checked against them (:mod:`inbound.attachments`).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Path, Response, status
from fastapi.concurrency import run_in_threadpool

from gateway.api.access import Principal
from gateway.api.errors import error_responses
from gateway.errors import MalformedMessage
from inbound.attachments import FALLBACK_TYPE, SAFE_HEADERS, content_disposition, served_type
from inbound.inbox import InboundStore
from inbound.parse import AttachmentContent, attachment_content

__all__ = ["router_for"]

_BINARY = {"schema": {"type": "string", "format": "binary"}}


def router_for(*, inbound: InboundStore, principal: Any) -> APIRouter:
    """The attachment route; ``principal`` resolves who is asking (help desk or Messenger)."""
    router = APIRouter(tags=["inbound"])
    who_asks = Depends(principal)

    def find(pk: int, n: int, who: Principal) -> AttachmentContent | None:
        source = inbound.source(pk)
        if source is None or not (who.is_helpdesk or (source.customer_id and who.may_read(source.customer_id))):
            return None
        try:
            return attachment_content(source.raw, n)
        except MalformedMessage:
            return None

    @router.get(
        "/v1/inbound/{pk}/attachments/{n}",
        response_class=Response,
        responses={
            200: {
                "description": "The attachment's bytes, as a download (`Content-Disposition: attachment`), typed "
                "by what the bytes are: the declared type when they confirm it, else `application/octet-stream`.",
                "content": {FALLBACK_TYPE: _BINARY, "image/*": _BINARY, "application/pdf": _BINARY},
            },
            **error_responses(401, 404, 422, 503),
        },
    )
    async def attachment(
        pk: int = Path(description="the stored inbound message's id (`inbound_id` in the webhook)"),
        n: int = Path(ge=0, description="the attachment's position, from 0, as listed in `attachments`"),
        who: Principal = who_asks,
    ) -> Response:
        """Attachment ``n`` (or inline image) of inbound message ``pk``, read from the stored raw message."""
        found = await run_in_threadpool(find, pk, n, who)
        if found is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no attachment {n} of inbound message {pk}")
        headers = {**SAFE_HEADERS, "Content-Disposition": content_disposition(found.attachment.filename)}
        return Response(found.data, media_type=served_type(found.attachment.content_type, found.data),
                        headers=headers)

    return router
