"""Operations routes: health and the outbox."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from gateway.app import Gateway
from gateway.models import OutboxEmail

__all__ = ["outbox_json", "router_for"]


def outbox_json(email: OutboxEmail, *, with_raw: bool = True) -> dict[str, Any]:
    """An outbox email as the API and the CLI show it."""
    data: dict[str, Any] = {
        "id": email.pk,
        "ticket_key": email.ticket_key,
        "kind": email.kind,
        "to": email.to,
        "subject": email.subject,
        "message_id": email.message_id,
        "status": email.status.value,
        "attempts": email.attempts,
        "created_at": email.created_at.isoformat(),
        "updated_at": email.updated_at.isoformat(),
        "last_error": email.last_error,
        "next_attempt_at": email.next_attempt_at.isoformat() if email.next_attempt_at else None,
    }
    if with_raw:
        data["raw"] = email.raw.decode("utf-8", "replace")
    return data


def router_for(gw: Gateway) -> APIRouter:
    """Routes for operators."""
    router = APIRouter(tags=["ops"])

    @router.get("/v1/outbox")
    def list_outbox(limit: int = Query(100, ge=1, le=1000)) -> dict[str, Any]:
        """Outbound emails, newest first: status (queued, sending, sent, retrying, failed, suppressed),
        attempts, the last error, when the next attempt is due, and the full source."""
        return {"emails": [outbox_json(e) for e in gw.outbox.recent(limit=limit)]}

    return router
