"""Operations routes: the outbox and the metrics."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from fastapi import APIRouter, HTTPException, Query, Response, status
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gateway.api.errors import error_responses
from gateway.api.responses import OutboxEmailOut, OutboxOut
from gateway.metrics import OUTBOX_DEPTH, OUTBOX_OLDEST_AGE
from outbound.outbox import OutboxStore

__all__ = ["metrics_router", "router_for"]


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


def metrics_router(*, outbox: OutboxStore, clock: Callable[[], datetime]) -> APIRouter:
    """``GET /metrics``: the Prometheus text format, no key (bind the API to a trusted network)."""
    router = APIRouter(tags=["ops"])

    @router.get("/metrics", response_class=PlainTextResponse,
                responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus metrics"}})
    def metrics() -> Response:
        """Counters and histograms of this process (``w2c_*``), and the outbox's depth and oldest age
        read from the store now."""
        depth, oldest = outbox.waiting()
        OUTBOX_DEPTH.set(depth)
        OUTBOX_OLDEST_AGE.set(max(0.0, (clock() - oldest).total_seconds()) if oldest else 0)
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router
