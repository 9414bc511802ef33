"""``/v1/webhooks``: the help-desk webhook calls, and replaying the ones that failed."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel

from gateway.app import Gateway
from gateway.models import WebhookStatus
from inbound.webhook import WebhookCall

__all__ = ["WebhookOut", "router_for", "webhook_out"]


class WebhookOut(BaseModel):
    """One help-desk webhook call: what it announces (the thread entry) and where it is."""

    id: int
    entry_id: int
    url: str
    status: WebhookStatus
    attempts: int
    last_error: str | None
    created_at: datetime | None
    updated_at: datetime | None
    next_attempt_at: datetime | None


class WebhookList(BaseModel):
    """Webhook calls, newest first."""

    webhooks: list[WebhookOut]


class Replayed(BaseModel):
    """A failed call queued again."""

    id: int
    status: WebhookStatus


def webhook_out(call: WebhookCall) -> WebhookOut:
    """A stored call as the API and the CLI show it."""
    return WebhookOut(
        id=call.pk, entry_id=call.entry_pk, url=call.url, status=call.status, attempts=call.attempts,
        last_error=call.last_error, created_at=call.created_at, updated_at=call.updated_at,
        next_attempt_at=call.next_attempt_at,
    )


def router_for(gw: Gateway) -> APIRouter:
    """Routes for the help desk's webhook calls."""
    router = APIRouter(tags=["webhooks"])

    @router.get("/v1/webhooks")
    def list_webhooks(
        status_: WebhookStatus | None = Query(None, alias="status", description="only calls in this state"),  # noqa: B008
        limit: int = Query(100, ge=1, le=1000),
    ) -> WebhookList:
        """Webhook calls, newest first: ``queued``, ``sending``, ``retrying``, ``delivered`` or
        ``failed`` (given up after the last attempt; replay it once the help desk is fixed)."""
        return WebhookList(webhooks=[webhook_out(c) for c in gw.webhooks.recent(status=status_, limit=limit)])

    @router.post("/v1/webhooks/{pk}/replay", responses={404: {"description": "no failed webhook call with that id"}})
    def replay(pk: int) -> Replayed:
        """Queue a ``failed`` call again with a fresh set of attempts; it is sent at once."""
        if not gw.webhooks.replay(pk, now=gw.clock()):
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no failed webhook call {pk}")
        return Replayed(id=pk, status=WebhookStatus.QUEUED)

    return router
