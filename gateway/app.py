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
from gateway.store import InboundStore, OutboxStore, TicketStore, is_sqlite, make_engine, migrate
from gateway.store.changes import publish_after_commit
from gateway.store.kv import get_or_create
from gateway.store.messenger import MessengerStore
from gateway.store.unseen import UnseenStore
from gateway.tokens import Keyring
from inbound.pipeline import Extractor, InboundPipeline
from inbound.recipients import RecipientCheck
from outbound.deliver import Deliverer
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
    messenger: MessengerStore
    signal: ChangeSignal
    hub: Hub
    messenger_secret: bytes
    #: Work younger than this is left to its own broker message before the sweeper takes it.
    sweep_grace: timedelta = SWEEP_GRACE

    def store_inbound(self, mail_from: str, rcpt_to: Sequence[str], raw: bytes) -> int:
        """Commit a raw inbound message durably; return its id."""
        return self.inbound.save_raw(mail_from=mail_from, rcpt_to=rcpt_to, raw=raw, now=self.clock())

    def enqueue_inbound(self, pk: int) -> None:
        """Hand stored message ``pk`` to the pipeline."""
        self.jobs.send("process_inbound", pk)

    def sweep(self) -> None:
        """Re-enqueue due emails and unprocessed inbound messages (lost broker messages, dead workers)."""
        before = self.clock() - self.sweep_grace
        for pk in self.outbox.due(before=before):
            self.jobs.send("deliver_email", pk)
        for pk in self.inbound.unprocessed(received_before=before):
            self.jobs.send("process_inbound", pk)
        for ticket_key in self.unseen.overdue_tickets(grace=self.sweep_grace):
            self.jobs.send("unseen_check", ticket_key)

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
        enqueue_delivery=lambda pk: jobs.send("deliver_email", pk),
        schedule_unseen_check=lambda ticket_key, due_at: unseen.schedule_for(ticket_key, due_at),
        unseen_delay=timedelta(seconds=settings.unseen_delay_seconds),
    )
    deliverer = Deliverer(
        outbox=outbox,
        sender=sender,
        mail_from=_bare_address(settings.from_address),
        clock=clock,
        retry_later=lambda pk, delay: jobs.send("deliver_email", pk, delay_seconds=delay),
    )
    unseen = UnseenChecker(
        store=UnseenStore(engine),
        draft_email=lambda ticket, rows, now: notifier.reply_email(ticket, as_teammate_replies(rows), now=now),
        enqueue_delivery=lambda pk: jobs.send("deliver_email", pk),
        schedule=lambda ticket_key, delay: jobs.send("unseen_check", ticket_key, delay_seconds=delay),
        clock=clock,
        delay=timedelta(seconds=settings.unseen_delay_seconds),
        max_wait=timedelta(seconds=settings.unseen_max_wait_seconds),
    )
    recipients = RecipientCheck(keyring=keyring, ticket_by_key=tickets.get_by_key)
    pipeline = InboundPipeline(
        inbound=inbound, recipients=recipients, extractor=extractor or _default_extractor(), clock=clock
    )
    signal = signal if signal is not None else _signal(settings.redis_url)
    publish_after_commit(engine, signal.publish)
    messenger = MessengerStore(engine)
    messenger_secret = settings.messenger_secret or get_or_create(
        engine, "messenger_secret", lambda: secrets.token_urlsafe(32)
    )
    jobs.declare("deliver_email", deliverer.deliver, queue=OUTBOUND_QUEUE)
    jobs.declare("process_inbound", pipeline.process, queue=INBOUND_QUEUE)
    jobs.declare("unseen_check", unseen.check, queue=UNSEEN_QUEUE)
    return Gateway(
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
        messenger=messenger,
        signal=signal,
        hub=_hub(messenger, signal, poll_seconds=settings.messenger_poll_seconds),
        messenger_secret=messenger_secret.encode(),
    )


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
