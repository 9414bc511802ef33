"""Help-desk webhook calls: one row per landed reply, stored with it, claimed and retried until a 2xx."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from gateway.store.tables import webhook_deliveries

__all__ = ["WebhookCall", "WebhookStatus", "WebhookStore"]


class WebhookStatus:
    """Where a webhook call is (values of ``webhook_deliveries.status``)."""

    QUEUED = "queued"
    SENDING = "sending"
    RETRYING = "retrying"
    DELIVERED = "delivered"


_CLAIMABLE = (WebhookStatus.QUEUED, WebhookStatus.RETRYING, WebhookStatus.SENDING)


@dataclass(frozen=True, kw_only=True)
class WebhookCall:
    """One stored webhook call."""

    pk: int
    entry_pk: int
    url: str
    payload: str
    status: str
    attempts: int
    last_error: str | None


class WebhookStore:
    """Reads and updates webhook calls."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def get(self, pk: int) -> WebhookCall | None:
        """Webhook call ``pk``, or None."""
        with self._engine.connect() as conn:
            row = conn.execute(select(webhook_deliveries).where(webhook_deliveries.c.pk == pk)).first()
        if row is None:
            return None
        m = row._mapping
        return WebhookCall(pk=m["pk"], entry_pk=m["entry_pk"], url=m["url"], payload=m["payload"],
                           status=m["status"], attempts=m["attempts"], last_error=m["last_error"])

    def due(self, *, before: datetime, limit: int = 500) -> list[int]:
        """Calls waiting (or stuck sending) whose next attempt was due before ``before``: the sweeper's work."""
        query = (
            select(webhook_deliveries.c.pk)
            .where(webhook_deliveries.c.status.in_(_CLAIMABLE), webhook_deliveries.c.next_attempt_at <= before)
            .order_by(webhook_deliveries.c.next_attempt_at)
            .limit(limit)
        )
        with self._engine.connect() as conn:
            return list(conn.execute(query).scalars())

    def claim(self, pk: int, *, now: datetime, lease: timedelta) -> WebhookCall | None:
        """Take call ``pk`` if it is due; None if it is not (delivered, or held by another worker)."""
        with self._engine.begin() as conn:
            claimed = conn.execute(
                update(webhook_deliveries)
                .where(webhook_deliveries.c.pk == pk, webhook_deliveries.c.status.in_(_CLAIMABLE),
                       webhook_deliveries.c.next_attempt_at <= now)
                .values(status=WebhookStatus.SENDING, next_attempt_at=now + lease, updated_at=now)
            ).rowcount
        return self.get(pk) if claimed == 1 else None

    def mark(self, pk: int, status: str, *, now: datetime, next_attempt_at: datetime | None = None,
             error: str | None = None) -> None:
        """Record an attempt on call ``pk``."""
        with self._engine.begin() as conn:
            conn.execute(
                update(webhook_deliveries)
                .where(webhook_deliveries.c.pk == pk)
                .values(status=status, updated_at=now, next_attempt_at=next_attempt_at, last_error=error,
                        attempts=webhook_deliveries.c.attempts + 1)
            )
