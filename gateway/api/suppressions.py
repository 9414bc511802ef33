"""``/v1/suppressions``: the addresses the gateway does not email, why, and lifting them."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import Field

from gateway.api.errors import error_responses
from gateway.wire_types import Instant, OutModel
from outbound.bounces import DeliveryLoop, Suppression

__all__ = ["SuppressionOut", "router_for", "suppression_out"]


class SuppressionOut(OutModel):
    """A suppressed address and its evidence."""

    address: str
    reason: str = Field(description="hard bounce, complaint, soft bounces (score n), or the relay's refusal")
    since: Instant
    kind: str | None = Field(description="hard, soft, complaint or relay")
    email_id: int | None = Field(description="the outbound email whose failure is the evidence")
    inbound_id: int | None = Field(description="the bounce or complaint received (an inbound message id)")
    status_code: str | None
    diagnostic: str | None = Field(description="the remote server's words")


class SuppressionList(OutModel):
    """Suppressed addresses, newest first."""

    suppressions: list[SuppressionOut]


class Lifted(OutModel):
    """An address emailed again."""

    address: str
    lifted: bool


def suppression_out(s: Suppression) -> SuppressionOut:
    """A suppression as the API and the CLI show it."""
    return SuppressionOut(address=s.address, reason=s.reason, since=s.since.isoformat(), kind=s.kind,
                          email_id=s.outbox_pk, inbound_id=s.inbound_pk, status_code=s.status_code,
                          diagnostic=s.diagnostic)


def router_for(*, delivery: DeliveryLoop) -> APIRouter:
    """Routes for suppression management (help-desk key)."""
    router = APIRouter(tags=["suppressions"])

    @router.get("/v1/suppressions", responses=error_responses(401, 422, 503))
    def list_suppressions(limit: int = Query(100, ge=1, le=1000)) -> SuppressionList:
        """Addresses not emailed, newest first, each with why (the email, the bounce, code and text)."""
        return SuppressionList(suppressions=[suppression_out(s) for s in delivery.suppressions(limit=limit)])

    @router.get("/v1/suppressions/{address}", responses=error_responses(401, 404, 422, 503))
    def show_suppression(address: str) -> SuppressionOut:
        """Why ``address`` is suppressed."""
        found = delivery.suppression(address)
        if found is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"{address} is not suppressed")
        return suppression_out(found)

    @router.delete("/v1/suppressions/{address}", responses=error_responses(401, 404, 422, 503))
    def lift(address: str) -> Lifted:
        """Email ``address`` again: the suppression goes and its bounce score is forgotten."""
        if not delivery.lift(address):
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"{address} is not suppressed")
        return Lifted(address=address.strip().lower(), lifted=True)

    return router
