"""The gateway's jobs: actor declarations on one broker, how work is enqueued, and the sweeper.

Actors are declared on an explicit broker (never Dramatiq's global one) with Dramatiq's retries
off: the store records attempts and due times (``gateway.retry``), and the sweeper re-enqueues
whatever is due and has lost its broker message (Redis restarted or flushed, a worker died).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import dramatiq
from dramatiq.broker import MessageProxy

from gateway.broker import INBOUND_QUEUE, OUTBOUND_QUEUE, UNSEEN_QUEUE
from gateway.logs import one_line
from gateway.metrics import JOB_LATENCY, child
from gateway.store.db import is_lost_store

__all__ = [
    "DELIVER_EMAILS",
    "DELIVER_WEBHOOK",
    "FAN_OUT_INBOUND",
    "INBOUND_BATCH",
    "INBOUND_GATHER_SECONDS",
    "PROCESS_INBOUND",
    "SWEEP_AGAIN_AFTER",
    "SWEEP_GRACE",
    "UNSEEN_CHECK",
    "JobLatency",
    "Jobs",
    "Sweep",
    "Sweeper",
]

log = logging.getLogger(__name__)

#: Actor: send stored emails (a list of outbox pks).
DELIVER_EMAILS = "deliver_emails"
#: Actor: process stored inbound messages (a list of their pks, landed together).
PROCESS_INBOUND = "process_inbound"
#: Actor: a group commit's messages in ``process_inbound`` jobs of up to ``INBOUND_BATCH``.
FAN_OUT_INBOUND = "fan_out_inbound"
#: Actor: R2's unseen check of one ticket.
UNSEEN_CHECK = "unseen_check"
#: Actor: make stored help-desk webhook calls (a list of their pks).
DELIVER_WEBHOOK = "deliver_webhook"
#: Most emails one delivery job names (the deliverer claims others due along with them).
EMAIL_BATCH = 25
#: Most inbound messages one pipeline job processes (their endings share one transaction).
INBOUND_BATCH = 16
#: Seconds a stored message waits for others to share its job, when a job was sent less than this ago
#: (``gateway.gather``): under load a job carries a window's messages, not one SMTP group commit's.
INBOUND_GATHER_SECONDS = 0.05
#: Most webhook calls one delivery job names.
WEBHOOK_BATCH = 32
#: Most tickets one unseen-check job of the sweeper names.
UNSEEN_BATCH = 100
#: Work younger than this is left to its own broker message; the sweeper takes older work.
SWEEP_GRACE = timedelta(seconds=10)
#: A message the sweeper enqueued is not enqueued again before this (its job may wait in a backlog).
SWEEP_AGAIN_AFTER = timedelta(seconds=60)



class Jobs:
    """Declares the gateway's actors on one broker and enqueues them."""

    def __init__(self, broker: dramatiq.Broker) -> None:
        self.broker = broker
        self._actors: dict[str, dramatiq.Actor[Any, Any]] = {}
        if not any(isinstance(m, JobLatency) for m in broker.middleware):
            broker.add_middleware(JobLatency())

    def declare(self, name: str, fn: Callable[..., Any], *, queue: str) -> None:
        """Declare ``fn`` as actor ``name`` on ``queue``, with Dramatiq's retries off (see the module)."""
        def run(*args: Any) -> None:
            try:
                fn(*args)  # results are recorded in the store, not returned to the broker
            except Exception as exc:
                if not is_lost_store(exc):
                    raise  # a bug: Dramatiq logs it with its traceback
                # An outage, not a bug: one line, no traceback; what the job had to do is in the store,
                # and the sweeper enqueues it again once the store is back.
                log.warning("job %s(%s) stopped: the store is unavailable (%s); the sweeper runs it again",
                            name, ", ".join(map(repr, args)), one_line(exc))

        run.__name__ = run.__qualname__ = name
        declare = dramatiq.actor(broker=self.broker, actor_name=name, queue_name=queue, max_retries=0)
        self._actors[name] = declare(run)

    def send(self, name: str, *args: Any, delay_seconds: float = 0) -> None:
        """Enqueue actor ``name`` with ``args`` (after ``delay_seconds``)."""
        delay = int(delay_seconds * 1000) or None
        self._actors[name].send_with_options(args=args, delay=delay)

    def deliver_emails(self, pks: Sequence[int]) -> None:
        """Hand stored emails to delivery, in batches (the hand-on of ``outbound.outbox.QUEUED_EMAILS``)."""
        for start in range(0, len(pks), EMAIL_BATCH):
            self.send(DELIVER_EMAILS, list(pks[start:start + EMAIL_BATCH]))

    def process_inbound(self, pks: Sequence[int]) -> None:
        """Hand stored messages to the pipeline (the hand-on of ``inbound.inbox.STORED_MAIL``): one
        broker message for a whole group commit (one Redis round trip for the SMTP process), split by
        a worker into jobs of up to ``INBOUND_BATCH`` when larger."""
        if len(pks) > INBOUND_BATCH:
            self.send(FAN_OUT_INBOUND, list(pks))
        elif pks:
            self.send(PROCESS_INBOUND, list(pks))

    def fan_out_inbound(self, pks: Sequence[int]) -> None:
        """Stored messages in jobs of up to ``INBOUND_BATCH``, each processed as one batch (a job:
        re-sending one twice is harmless)."""
        for start in range(0, len(pks), INBOUND_BATCH):
            self.send(PROCESS_INBOUND, list(pks[start:start + INBOUND_BATCH]))

    def deliver_webhooks(self, pks: Sequence[int]) -> None:
        """Hand stored webhook calls to delivery (the hand-on of ``inbound.webhook.WEBHOOKS_QUEUED``):
        the calls one transaction stored in jobs of up to ``WEBHOOK_BATCH``, each claimed, posted and
        recorded together."""
        for start in range(0, len(pks), WEBHOOK_BATCH):
            self.send(DELIVER_WEBHOOK, list(pks[start:start + WEBHOOK_BATCH]))

    def check_unseen(self, ticket_keys: list[int], delay_seconds: float) -> None:
        """Run the unseen check of ``ticket_keys`` (and of whatever else is due then) after ``delay_seconds``."""
        self.send(UNSEEN_CHECK, ticket_keys, delay_seconds=delay_seconds)


class JobLatency(dramatiq.Middleware):
    """Observes, for each job a worker starts, how long after its due time it started."""

    def before_process_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        eta = message.options.get("eta")  # set on delayed messages, in milliseconds
        due = (int(eta) if eta else message.message_timestamp) / 1000
        child(JOB_LATENCY, message.actor_name).observe(max(0.0, time.time() - due))


class Sweep:
    """One sweep: re-enqueue due emails, unprocessed inbound messages, overdue unseen checks and
    due webhook calls (lost broker messages, dead workers). Each source is a function of the
    cut-off time (work older than ``grace``) returning the ids to enqueue (``unprocessed_mail`` also
    gets the time now, to mark what it hands out)."""

    def __init__(
        self,
        *,
        jobs: Jobs,
        clock: Callable[[], datetime],
        due_emails: Callable[[datetime], Sequence[int]],
        unprocessed_mail: Callable[[datetime, datetime], Sequence[int]],
        overdue_unseen: Callable[[timedelta], Sequence[int]],
        due_webhooks: Callable[[datetime], Sequence[int]] | None,
        grace: timedelta = SWEEP_GRACE,
    ) -> None:
        self._jobs = jobs
        self._clock = clock
        self._due_emails = due_emails
        self._unprocessed_mail = unprocessed_mail
        self._overdue_unseen = overdue_unseen
        self._due_webhooks = due_webhooks
        self.grace = grace

    def __call__(self) -> None:
        now = self._clock()
        before = now - self.grace
        self._jobs.deliver_emails(self._due_emails(before))
        self._jobs.fan_out_inbound(self._unprocessed_mail(before, now))
        overdue = list(self._overdue_unseen(self.grace))
        for start in range(0, len(overdue), UNSEEN_BATCH):
            self._jobs.send(UNSEEN_CHECK, overdue[start:start + UNSEEN_BATCH])
        if self._due_webhooks is not None:
            self._jobs.deliver_webhooks(self._due_webhooks(before))


class Sweeper:
    """Every ``interval`` seconds, calls ``sweep`` until stopped: re-enqueues work the store says is due."""

    def __init__(self, sweep: Callable[[], None], *, interval: float = 5.0) -> None:
        self._sweep = sweep
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gateway-sweeper", daemon=True)

    def start(self) -> None:
        """Start sweeping in a background thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop after the current sweep."""
        self._stop.set()
        self._thread.join(timeout=self._interval + 5)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self._sweep()
            except Exception as exc:
                if is_lost_store(exc):  # an outage: one line each sweep until the store is back
                    log.warning("sweep skipped: the store is unavailable (%s)", one_line(exc))
                else:
                    log.warning("sweep failed", exc_info=True)
            self._stop.wait(max(0.0, self._interval - (time.monotonic() - started)))


#: The queue of each actor.
QUEUES = {
    DELIVER_EMAILS: OUTBOUND_QUEUE,
    PROCESS_INBOUND: INBOUND_QUEUE,
    FAN_OUT_INBOUND: INBOUND_QUEUE,
    UNSEEN_CHECK: UNSEEN_QUEUE,
    DELIVER_WEBHOOK: INBOUND_QUEUE,
}
