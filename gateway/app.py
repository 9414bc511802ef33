"""The composition root: the one place that turns settings into a running gateway."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import dramatiq

from gateway.broker import INBOUND_QUEUE, OUTBOUND_QUEUE, UNSEEN_QUEUE, Jobs, Sweeper, make_broker
from gateway.messenger.hub import Hub
from gateway.messenger.live import ChangeSignal, LocalSignal, RedisSignal
from gateway.settings import Settings
from gateway.store import InboundStore, OutboxStore, RawMessage, TicketStore, is_sqlite, make_engine, migrate
from gateway.store.changes import publish_after_commit
from gateway.store.kv import get_or_create
from gateway.store.messenger import MessengerStore
from gateway.store.outbox import hand_on_after_commit
from gateway.store.unseen import UnseenStore
from gateway.store.webhooks import WebhookStore
from gateway.tokens import Keyring
from inbound.commit import CommitQueue
from inbound.handler import InboundHandler
from inbound.pipeline import Extractor, InboundPipeline
from inbound.recipients import RecipientCheck
from inbound.server import ConnectionGate, InboundServer, ServerLimits, tls_context
from inbound.webhook import HttpPoster, Poster, WebhookDeliverer
from outbound.deliver import BATCH_LIMIT, Deliverer
from outbound.notify import Notifier
from outbound.render import Branding, Renderer, find_templates
from outbound.send import Sender, sender_from_url
from outbound.unseen_check import UnseenChecker, as_teammate_replies

__all__ = ["Gateway", "build_gateway", "utcnow"]

log = logging.getLogger(__name__)

#: Work younger than this is left to its own broker message; the sweeper takes older work.
SWEEP_GRACE = timedelta(seconds=10)


def utcnow() -> datetime:
    """The current time, timezone-aware (the default clock)."""
    return datetime.now(UTC)


def _default_extractor() -> Extractor:
    from inbound.extract import extract_reply

    return extract_reply


def _reply_marker() -> str:
    from inbound.extract import REPLY_ABOVE_MARKER

    return str(REPLY_ABOVE_MARKER)


@dataclass
class Gateway:
    """Every part of the gateway, wired; the runners in ``gateway.run`` start the ones they need."""

    settings: Settings
    clock: Callable[[], datetime]
    tickets: TicketStore
    outbox: OutboxStore
    inbound: InboundStore
    keyring: Keyring
    api_keys: tuple[str, ...]
    renderer: Renderer
    notifier: Notifier
    deliverer: Deliverer
    unseen: UnseenChecker
    recipients: RecipientCheck
    pipeline: InboundPipeline
    jobs: Jobs
    sender: Sender
    webhooks: WebhookStore
    messenger: MessengerStore
    signal: ChangeSignal
    hub: Hub
    messenger_secret: bytes
    webhook_deliverer: WebhookDeliverer | None = None
    #: Work younger than this is left to its own broker message before the sweeper takes it.
    sweep_grace: timedelta = SWEEP_GRACE

    def store_inbound(self, mail_from: str, rcpt_to: Sequence[str], raw: bytes) -> int:
        """Commit a raw inbound message durably; return its id."""
        return self.inbound.save_raw(mail_from=mail_from, rcpt_to=rcpt_to, raw=raw, now=self.clock())

    def commit_queue(self) -> CommitQueue:
        """A group-commit queue storing raw inbound messages and enqueueing their processing."""

        def save_many(messages: Sequence[RawMessage]) -> list[int]:
            return self.inbound.save_many(messages, now=self.clock())

        return CommitQueue(save_many, after_commit=self.enqueue_inbound_batch)

    def smtp_listener(self, commits: CommitQueue, *, port: int | None = None) -> InboundServer:
        """The inbound SMTP (or LMTP) listener from the settings, committing through ``commits``."""
        s = self.settings
        gate = ConnectionGate(s.max_connections)
        handler = InboundHandler(
            refusal=self.recipients.refusal,
            commit=commits.submit_async,
            max_message_bytes=s.max_message_bytes,
            lmtp=s.smtp_lmtp,
            stopping=lambda: gate.stopping,
            cheap_refusal=self.recipients.is_cached,
        )
        limits = ServerLimits(
            max_message_bytes=s.max_message_bytes,
            max_connections=s.max_connections,
            idle_timeout=s.smtp_idle_timeout_seconds,
            data_timeout=s.smtp_data_timeout_seconds,
        )
        tls = tls_context(s.smtp_tls_cert, s.smtp_tls_key) if s.smtp_tls_cert and s.smtp_tls_key else None
        return InboundServer(
            handler, host=s.smtp_host, port=s.smtp_port if port is None else port, limits=limits, tls=tls,
            lmtp=s.smtp_lmtp, reuse_port=s.smtp_processes > 1, gate=gate,
        )

    def enqueue_inbound(self, pk: int) -> None:
        """Hand stored message ``pk`` to the pipeline."""
        self.jobs.send("process_inbound", pk)

    def enqueue_inbound_batch(self, pks: Sequence[int]) -> None:
        """Hand the messages of one group commit to the pipeline with one broker message (one Redis round
        trip for the SMTP process); a worker fans it out to one ``process_inbound`` each. Lost, the
        sweeper finds the messages still ``received``."""
        if len(pks) == 1:
            self.enqueue_inbound(pks[0])
        elif pks:
            self.jobs.send("fan_out_inbound", list(pks))

    def fan_out_inbound(self, pks: Sequence[int]) -> None:
        """One ``process_inbound`` per message of a batch (a job: re-sending one twice is harmless)."""
        for pk in pks:
            self.enqueue_inbound(pk)

    def sweep(self) -> None:
        """Re-enqueue due emails and unprocessed inbound messages (lost broker messages, dead workers)."""
        before = self.clock() - self.sweep_grace
        due = self.outbox.due(before=before)
        for start in range(0, len(due), BATCH_LIMIT):
            self.jobs.send("deliver_emails", due[start:start + BATCH_LIMIT])
        for pk in self.inbound.unprocessed(received_before=before):
            self.jobs.send("process_inbound", pk)
        for ticket_key in self.unseen.overdue_tickets(grace=self.sweep_grace):
            self.jobs.send("unseen_check", ticket_key)
        if self.webhook_deliverer is not None:
            for pk in self.webhooks.due(before=before):
                self.jobs.send("deliver_webhook", pk)

    def release_inbound(self, pk: int) -> bool:
        """Release quarantined message ``pk``: it goes through the pipeline again, without the sender check."""
        released = self.inbound.release(pk, now=self.clock())
        if released:
            self.enqueue_inbound(pk)
        return released

    def _landed(self, entry_pk: int) -> None:
        pk = self.inbound.webhook_for_entry(entry_pk)
        if pk is not None:
            self.jobs.send("deliver_webhook", pk)

    def sweeper(self, interval: float = 5.0) -> Sweeper:
        """A sweeper for this gateway (started by worker processes)."""
        return Sweeper(self.sweep, interval=interval)


def build_gateway(
    settings: Settings,
    *,
    clock: Callable[[], datetime] = utcnow,
    broker: dramatiq.Broker | None = None,
    sender: Sender | None = None,
    extractor: Extractor | None = None,
    webhook_poster: Poster | None = None,
    migrate_sqlite: bool = True,
    signal: ChangeSignal | None = None,
) -> Gateway:
    """Build every part from ``settings``; tests pass a clock, a broker or a sender by keyword."""
    engine = make_engine(settings.database_url)
    if migrate_sqlite and is_sqlite(engine):
        migrate(engine)
    keys = settings.secret_keys or (
        (1, get_or_create(engine, "reply_token_key_1", lambda: secrets.token_urlsafe(32)).encode()),
    )
    api_keys = settings.api_keys or (get_or_create(engine, "api_key", lambda: "w2c_" + secrets.token_urlsafe(24)),)
    keyring = Keyring(keys, settings.reply_domain)
    tickets, outbox, inbound = TicketStore(engine), OutboxStore(engine), InboundStore(engine)
    jobs = Jobs(broker if broker is not None else make_broker(settings.redis_url))
    renderer = Renderer(
        find_templates(),
        branding=Branding(
            product_name=settings.product_name,
            color=settings.brand_color,
            logo_url=settings.logo_url,
            footer_address=settings.footer_address,
        ),
        marker=_reply_marker(),
        messenger_url=settings.messenger_url,
    )
    sender = sender if sender is not None else sender_from_url(settings.smtp_relay_url)
    notifier = Notifier(
        tickets=tickets,
        renderer=renderer,
        keyring=keyring,
        from_address=settings.from_address,
        schedule_unseen_check=lambda ticket_key, due_at: unseen.schedule_for(ticket_key, due_at),
        unseen_delay=timedelta(seconds=settings.unseen_delay_seconds),
    )
    deliverer = Deliverer(
        outbox=outbox,
        sender=sender,
        mail_from=_bare_address(settings.from_address),
        clock=clock,
        retry_later=lambda pk, delay: jobs.send("deliver_emails", [pk], delay_seconds=delay),
    )
    unseen = UnseenChecker(
        store=UnseenStore(engine),
        draft_email=lambda ticket, rows, now: notifier.reply_email(ticket, as_teammate_replies(rows), now=now),
        schedule=lambda ticket_key, delay: jobs.send("unseen_check", ticket_key, delay_seconds=delay),
        clock=clock,
        delay=timedelta(seconds=settings.unseen_delay_seconds),
        max_wait=timedelta(seconds=settings.unseen_max_wait_seconds),
    )
    recipients = RecipientCheck(keyring=keyring, ticket_by_key=tickets.get_by_key)
    webhooks = WebhookStore(engine)
    landed: list[Callable[[int], None]] = []
    fan_out: list[Callable[[Sequence[int]], None]] = []
    pipeline = InboundPipeline(
        inbound=inbound, recipients=recipients, ticket_by_key=tickets.get_by_key,
        extractor=extractor or _default_extractor(), clock=clock,
        trusted_authserv_id=settings.trusted_authserv_id, webhook_url=settings.helpdesk_webhook_url,
        on_landed=lambda entry_pk: landed[0](entry_pk),
    )
    signal = signal if signal is not None else _signal(settings.redis_url)
    publish_after_commit(engine, signal.publish)
    messenger = MessengerStore(engine)
    messenger_secret = settings.messenger_secret or get_or_create(
        engine, "messenger_secret", lambda: secrets.token_urlsafe(32)
    )
    jobs.declare("deliver_emails", deliverer.deliver_many, queue=OUTBOUND_QUEUE)
    hand_on_after_commit(engine, lambda pks: jobs.send("deliver_emails", pks))
    jobs.declare("process_inbound", pipeline.process, queue=INBOUND_QUEUE)
    jobs.declare("fan_out_inbound", lambda pks: fan_out[0](pks), queue=INBOUND_QUEUE)
    jobs.declare("unseen_check", unseen.check, queue=UNSEEN_QUEUE)
    webhook_deliverer = None
    if settings.helpdesk_webhook_url and settings.helpdesk_webhook_secret:
        webhook_deliverer = WebhookDeliverer(
            store=webhooks, poster=webhook_poster or HttpPoster(), secret=settings.helpdesk_webhook_secret,
            clock=clock, retry_later=lambda pk, delay: jobs.send("deliver_webhook", pk, delay_seconds=delay),
        )
        jobs.declare("deliver_webhook", webhook_deliverer.deliver, queue=INBOUND_QUEUE)
    gw = Gateway(
        settings=settings,
        clock=clock,
        tickets=tickets,
        outbox=outbox,
        inbound=inbound,
        keyring=keyring,
        api_keys=api_keys,
        renderer=renderer,
        notifier=notifier,
        deliverer=deliverer,
        unseen=unseen,
        recipients=recipients,
        pipeline=pipeline,
        jobs=jobs,
        sender=sender,
        webhooks=webhooks,
        webhook_deliverer=webhook_deliverer,
        messenger=messenger,
        signal=signal,
        hub=_hub(messenger, signal, poll_seconds=settings.messenger_poll_seconds),
        messenger_secret=messenger_secret.encode(),
    )
    landed.append(gw._landed)
    fan_out.append(gw.fan_out_inbound)
    return gw


def _signal(redis_url: str | None) -> ChangeSignal:
    """Wake-ups through Redis when processes share one; in-process otherwise."""
    return RedisSignal(redis_url) if redis_url else LocalSignal()


def _hub(messenger: MessengerStore, signal: ChangeSignal, *, poll_seconds: float) -> Hub:
    from gateway.messenger.wire import frame

    return Hub(
        load=lambda customer_id, after, limit: [
            frame(v) for v in messenger.changes_since(customer_id, after=after, limit=limit)
        ],
        latest=messenger.changes.latest,
        tail=lambda after: messenger.changes.tail(after=after),
        signal=signal,
        poll_seconds=poll_seconds,
    )


def _bare_address(value: str) -> str:
    from email.utils import parseaddr

    return parseaddr(value)[1] or value
