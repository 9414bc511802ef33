"""Operations routes: the outbox."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Query, status

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
        attempts, the last error, when the next attempt is due, the ledger (``history``: sent,
        deferred, bounced, complained, suppressed, with codes and texts) and the full source."""
        emails = outbox.recent(limit=limit)
        ledgers = outbox.ledgers([e.pk for e in emails])
        return OutboxOut(emails=[OutboxEmailOut.of(e, ledgers[e.pk]) for e in emails])

    @router.get("/v1/outbox/{pk}", responses=error_responses(401, 404, 422, 503))
    def show_email(pk: int) -> OutboxEmailOut:
        """One outbound email with its ledger and its full source."""
        email = outbox.get(pk)
        if email is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no outbound email {pk}")
        return OutboxEmailOut.of(email, outbox.ledgers([pk])[pk])

    return router
