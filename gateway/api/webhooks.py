"""``/v1/webhooks``: the help-desk webhook calls, and replaying the ones that failed."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, status

from gateway.api.errors import error_responses
from gateway.api.schemas import MAX_ROW_ID
from gateway.models import WebhookStatus
from gateway.wire_types import Instant, OutModel
from inbound.webhook import WebhookCall, WebhookStore

__all__ = ["WebhookOut", "router_for", "webhook_out"]


class WebhookOut(OutModel):
    """One help-desk webhook call: what it announces (the thread entry) and where it is."""

    id: int
    entry_id: int | None
    url: str
    status: WebhookStatus
    attempts: int
    last_error: str | None
    created_at: Instant | None
    updated_at: Instant | None
    next_attempt_at: Instant | None


class WebhookList(OutModel):
    """Webhook calls, newest first."""

    webhooks: list[WebhookOut]


class Replayed(OutModel):
    """A failed call queued again."""

    id: int
    status: WebhookStatus


def _instant(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def webhook_out(call: WebhookCall) -> WebhookOut:
    """A stored call as the API and the CLI show it."""
    return WebhookOut(
        id=call.pk, entry_id=call.entry_pk, url=call.url, status=call.status, attempts=call.attempts,
        last_error=call.last_error, created_at=_instant(call.created_at), updated_at=_instant(call.updated_at),
        next_attempt_at=_instant(call.next_attempt_at),
    )


def router_for(*, webhooks: WebhookStore, clock: Callable[[], datetime]) -> APIRouter:
    """Routes for the help desk's webhook calls."""
    router = APIRouter(tags=["webhooks"])

    @router.get("/v1/webhooks", responses=error_responses(401, 422, 503))
    def list_webhooks(
        status_: WebhookStatus | None = Query(None, alias="status", description="only calls in this state"),  # noqa: B008
        limit: int = Query(100, ge=1, le=1000),
    ) -> WebhookList:
        """Webhook calls, newest first: ``queued``, ``sending``, ``retrying``, ``delivered`` or
        ``failed`` (given up after the last attempt; replay it once the help desk is fixed)."""
        return WebhookList(webhooks=[webhook_out(c) for c in webhooks.recent(status=status_, limit=limit)])

    @router.post("/v1/webhooks/{pk}/replay", responses=error_responses(401, 404, 422, 503))
    def replay(pk: Annotated[int, Path(ge=1, le=MAX_ROW_ID)]) -> Replayed:
        """Queue a ``failed`` call again with a fresh set of attempts; it is sent at once."""
        if not webhooks.replay(pk, now=clock()):
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no failed webhook call {pk}")
        return Replayed(id=pk, status=WebhookStatus.QUEUED)

    return router
