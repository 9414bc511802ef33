"""Delivery of stored emails: claim them, send them, record the outcomes, schedule retries."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta

from gateway.errors import PermanentDeliveryFailure, TemporaryDeliveryFailure
from gateway.logs import event
from gateway.metrics import DELIVERY_SECONDS, EMAILS, RELAY_REPLIES, child, reply_class
from gateway.models import OutboxStatus
from gateway.retry import EMAIL_RETRIES, RetryPolicy
from outbound.outbox import Claimed, OutboxStore, Outcome
from outbound.send import Sender

__all__ = ["BATCH_LIMIT", "FINISHED_MEMORY", "RECORD_WITHIN", "SEND_LEASE", "Deliverer"]

log = logging.getLogger(__name__)

#: How long a worker holds an email it is sending before another may take it over: a worker killed
#: while sending has the emails of its last :data:`RECORD_WITHIN` of sending sent again (same
#: Message-IDs) this long after its last renewal. Renewed for the rest of the
#: batch once half of it has passed (one UPDATE), so a slow batch (25 emails, each up to the relay's
#: timeout) keeps its hold until each outcome is recorded.
SEND_LEASE = timedelta(seconds=60)
#: Longest stretch of sending whose outcomes are recorded together (one transaction): a relay slower than
#: this has each email recorded on its own; a fast one (a local MTA, ~1 ms a message) shares the cost.
RECORD_WITHIN = timedelta(milliseconds=50)
#: Most emails one job claims at once (others queued and due ride along on its connection).
BATCH_LIMIT = 25
#: Emails finished in another email's batch that a deliverer remembers, so that their own jobs
#: end without a transaction (the oldest are forgotten first; a forgotten one costs one claim).
FINISHED_MEMORY = 10_000
_FINAL = frozenset({OutboxStatus.SENT, OutboxStatus.FAILED, OutboxStatus.SUPPRESSED})


class Deliverer:
    """Sends stored emails through a :class:`Sender`; a lost or repeated job sends nothing twice."""

    def __init__(
        self,
        *,
        outbox: OutboxStore,
        sender: Sender,
        return_path: Callable[[int], str],
        clock: Callable[[], datetime],
        retry_later: Callable[[int, float], None],
        retries: RetryPolicy = EMAIL_RETRIES,
        jitter: Callable[[], float] = random.random,
        batch_limit: int = BATCH_LIMIT,
    ) -> None:
        self._outbox = outbox
        self._sender = sender
        self._return_path = return_path
        self._clock = clock
        self._retry_later = retry_later
        self._retries = retries
        self._jitter = jitter
        self._batch_limit = batch_limit
        self._finished: OrderedDict[int, None] = OrderedDict()  # see FINISHED_MEMORY
        self._in_flight: set[int] = set()  # claimed by a thread of this deliverer, not recorded yet
        self._finished_lock = threading.Lock()

    def deliver_many(self, pks: Sequence[int]) -> None:
        """Send the emails ``pks`` (one broker message: the emails one transaction stored)."""
        for pk in pks:
            self.deliver(pk)

    def deliver(self, pk: int) -> OutboxStatus | None:
        """Send email ``pk`` (and any other queued, due emails, up to the batch limit) once.

        Returns the new status of ``pk``; None when it was not due (sent, or held by another).
        """
        with self._finished_lock:
            if pk in self._finished:  # finished in an earlier batch of this deliverer
                del self._finished[pk]
                return None
            if pk in self._in_flight:  # in a batch another thread of this deliverer is sending
                return None
        claimed_at = self._clock()
        claimed = self._outbox.claim_batch(pk, now=claimed_at, lease=SEND_LEASE, limit=self._batch_limit)
        with self._finished_lock:
            self._in_flight.update(c.email.pk for c in claimed)
        try:
            return self._send_batch(pk, claimed, renew_at=claimed_at + SEND_LEASE / 2)
        finally:
            with self._finished_lock:
                self._in_flight.difference_update(c.email.pk for c in claimed)

    def _send_batch(self, pk: int, claimed: list[Claimed], *, renew_at: datetime) -> OutboxStatus | None:
        """Send the claimed emails one after another and record their outcomes as they come: at the latest
        once the unrecorded ones took :data:`RECORD_WITHIN` to send, so a worker killed mid-batch has only the
        emails of that last stretch (one, with a relay slower than that) sent again when the lease runs out."""
        suppressed: set[str] = set()  # 5.1.x answers within this batch
        status: OutboxStatus | None = None
        pending: list[Outcome] = []  # sent, not recorded yet
        since = self._clock()
        for n, c in enumerate(claimed):
            if (now := self._clock()) >= renew_at:
                # Half the lease has passed: hold the emails not recorded yet again (sent ones included).
                unrecorded = [o.pk for o in pending] + [r.email.pk for r in claimed[n:]]
                self._outbox.renew(unrecorded, now=now, lease=SEND_LEASE)
                renew_at = now + SEND_LEASE / 2
            if c.email.to.strip().lower() in suppressed:
                c = Claimed(c.email, suppressed=True)
            outcome = self._send(c)
            if outcome.suppress:
                suppressed.add(outcome.suppress.strip().lower())
            pending.append(outcome)
            if outcome.status == OutboxStatus.RETRYING:
                # The relay is refusing or unreachable: hand the rest back untried, due now.
                pending += [
                    Outcome(pk=r.email.pk, status=OutboxStatus.QUEUED, attempted=False,
                            next_attempt_at=self._clock(), error=r.email.last_error)
                    for r in claimed[n + 1:]
                ]
                break
            if self._clock() - since >= RECORD_WITHIN:
                status = self._finish(pending, pk) or status
                pending, since = [], self._clock()
        if pending:
            status = self._finish(pending, pk) or status
        return status

    def _finish(self, outcomes: list[Outcome], pk: int) -> OutboxStatus | None:
        """Record ``outcomes`` (one transaction), count and log them, and schedule the retries; ``pk``'s status
        if it is among them."""
        self._outbox.record(outcomes, now=self._clock())
        for o in outcomes:
            if o.attempted or o.status is OutboxStatus.SUPPRESSED:
                child(EMAILS, o.status.value).inc()
                event(log, f"email.{o.status.value}", email_id=o.pk, reply=o.reply, error=o.error,
                      next_attempt_at=o.next_attempt_at.isoformat() if o.next_attempt_at else None,
                      suppressed_address=o.suppress)
        self._remember(o.pk for o in outcomes if o.pk != pk and o.status in _FINAL)
        for o in outcomes:
            if o.status in (OutboxStatus.RETRYING, OutboxStatus.QUEUED) and o.next_attempt_at is not None:
                delay = max(0.0, (o.next_attempt_at - self._clock()).total_seconds())
                try:
                    self._retry_later(o.pk, delay)
                except Exception:  # the broker is down: the sweeper finds the email when it is due
                    log.warning("could not schedule email %s again; the sweeper will", o.pk, exc_info=True)
        return next((o.status for o in outcomes if o.pk == pk), None)

    def _remember(self, finished: Iterable[int]) -> None:
        with self._finished_lock:
            for pk in finished:
                self._finished[pk] = None
            while len(self._finished) > FINISHED_MEMORY:
                self._finished.popitem(last=False)

    def _send(self, claimed: Claimed) -> Outcome:
        email = claimed.email
        if claimed.suppressed:
            return Outcome(pk=email.pk, status=OutboxStatus.SUPPRESSED, attempted=False,
                           error=f"{email.to} is on the suppression list")
        try:
            # Each email its own envelope sender (VERP): its bounces come back naming it.
            started = time.perf_counter()
            try:
                reply = self._sender.send(mail_from=self._return_path(email.pk), to=[email.to], raw=email.raw)
            finally:
                DELIVERY_SECONDS.observe(time.perf_counter() - started)
        except TemporaryDeliveryFailure as exc:
            child(RELAY_REPLIES, reply_class(str(exc)[:3]) if str(exc)[:1].isdigit() else "none").inc()
            return self._temporary(email.pk, email.attempts + 1, str(exc))
        except PermanentDeliveryFailure as exc:
            child(RELAY_REPLIES, "5xx").inc()
            suppress = email.to if exc.enhanced.startswith("5.1.") else None
            return Outcome(pk=email.pk, status=OutboxStatus.FAILED, attempted=True, error=str(exc), suppress=suppress)
        child(RELAY_REPLIES, reply_class(reply[:3]) if reply else "none").inc()
        return Outcome(pk=email.pk, status=OutboxStatus.SENT, attempted=True, reply=reply)

    def _temporary(self, pk: int, attempts: int, error: str) -> Outcome:
        if self._retries.gives_up(attempts):
            return Outcome(pk=pk, status=OutboxStatus.FAILED, attempted=True, error=f"gave up: {error}")
        delay = self._retries.delay(attempts, jitter=self._jitter())
        return Outcome(
            pk=pk, status=OutboxStatus.RETRYING, attempted=True,
            next_attempt_at=self._clock() + timedelta(seconds=delay), error=error,
        )
