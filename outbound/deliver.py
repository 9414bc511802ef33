"""Delivery of one stored email: claim it, send it, record the outcome, schedule a retry."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime, timedelta

from gateway.errors import PermanentDeliveryFailure, TemporaryDeliveryFailure
from gateway.models import OutboxStatus
from gateway.store.outbox import OutboxStore
from outbound.retry import MAX_ATTEMPTS, backoff_seconds
from outbound.send import Sender

__all__ = ["Deliverer"]

#: How long a worker holds an email it is sending before another may take it over.
SEND_LEASE = timedelta(minutes=5)


class Deliverer:
    """Sends stored emails through a :class:`Sender`; a lost or repeated job sends nothing twice."""

    def __init__(
        self,
        *,
        outbox: OutboxStore,
        sender: Sender,
        mail_from: str,
        clock: Callable[[], datetime],
        retry_later: Callable[[int, float], None],
        max_attempts: int = MAX_ATTEMPTS,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self._outbox = outbox
        self._sender = sender
        self._mail_from = mail_from
        self._clock = clock
        self._retry_later = retry_later
        self._max_attempts = max_attempts
        self._jitter = jitter

    def deliver(self, pk: int) -> OutboxStatus | None:
        """Try to send email ``pk`` once; return its new status (None: not due, nothing done)."""
        now = self._clock()
        email = self._outbox.claim(pk, now=now, lease=SEND_LEASE)
        if email is None:
            return None
        if self._outbox.is_suppressed(email.to):
            self._outbox.mark(pk, OutboxStatus.SUPPRESSED, now=now, error=f"{email.to} is on the suppression list")
            return OutboxStatus.SUPPRESSED
        try:
            self._sender.send(mail_from=self._mail_from, to=[email.to], raw=email.raw)
        except TemporaryDeliveryFailure as exc:
            return self._temporary(pk, email.attempts + 1, str(exc))
        except PermanentDeliveryFailure as exc:
            now = self._clock()
            if exc.enhanced.startswith("5.1."):
                self._outbox.suppress(email.to, reason=str(exc), now=now)
            self._outbox.mark(pk, OutboxStatus.FAILED, now=now, attempted=True, error=str(exc))
            return OutboxStatus.FAILED
        self._outbox.mark(pk, OutboxStatus.SENT, now=self._clock(), attempted=True)
        return OutboxStatus.SENT

    def _temporary(self, pk: int, attempts: int, error: str) -> OutboxStatus:
        now = self._clock()
        if attempts >= self._max_attempts:
            self._outbox.mark(pk, OutboxStatus.FAILED, now=now, attempted=True, error=f"gave up: {error}")
            return OutboxStatus.FAILED
        delay = backoff_seconds(attempts, jitter=self._jitter())
        self._outbox.mark(
            pk, OutboxStatus.RETRYING, now=now, attempted=True,
            next_attempt_at=now + timedelta(seconds=delay), error=error,
        )
        self._retry_later(pk, delay)
        return OutboxStatus.RETRYING
