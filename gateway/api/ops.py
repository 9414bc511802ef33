"""Operations routes: the outbox."""

from __future__ import annotations

from fastapi import APIRouter, Query

from gateway.api.errors import error_responses
from gateway.api.responses import OutboxEmailOut, OutboxOut
from outbound.outbox import OutboxStore

__all__ = ["router_for"]


def router_for(*, outbox: OutboxStore) -> APIRouter:
    """Routes for operators."""
    router = APIRouter(tags=["ops"])

    @router.get("/v1/outbox", responses=error_responses(401, 422, 503))
    def list_outbox(limit: int = Query(100, ge=1, le=1000)) -> OutboxOut:
        """Outbound emails, newest first: status (queued, sending, sent, retrying, failed, suppressed),
        attempts, the last error, when the next attempt is due, and the full source."""
        return OutboxOut(emails=[OutboxEmailOut.of(e) for e in outbox.recent(limit=limit)])

    return router
