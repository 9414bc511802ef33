"""The composition root: the one place that turns settings into a running gateway. Wiring only."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dramatiq

from gateway.broker import make_broker
from gateway.errors import ConfigError
from gateway.gather import Gather
from gateway.jobs import (
    DELIVER_EMAILS,
    DELIVER_WEBHOOK,
    FAN_OUT_INBOUND,
    INBOUND_BATCH,
    INBOUND_GATHER_SECONDS,
    PROCESS_INBOUND,
    QUEUES,
    SWEEP_AGAIN_AFTER,
    SWEEP_GRACE,
    UNSEEN_CHECK,
    Jobs,
    Sweep,
)
from gateway.messenger.hub import Hub
from gateway.messenger.live import ChangeSignal, LocalSignal, RedisSignal
from gateway.messenger.store import MessengerStore
from gateway.settings import PREFIX, Settings
from gateway.store import Database, TicketStore, migrate
from gateway.store.changes import CUSTOMERS_CHANGED, publisher
from gateway.store.kv import get_or_create
from gateway.tokens import Keyring
from inbound.handler import InboundHandler
from inbound.inbox import STORED_MAIL, InboundStore
from inbound.pipeline import Extractor, InboundPipeline
from inbound.preparing import PreparingProcesses, default_processes
from inbound.recipients import RecipientCheck
from inbound.server import ConnectionGate, InboundServer, ServerLimits, tls_context
from inbound.webhook import WEBHOOKS_QUEUED, HttpPoster, Poster, WebhookDeliverer, WebhookStore
from outbound.bounces import BouncePolicy, DeliveryLoop
from outbound.deliver import Deliverer
from outbound.event_store import UNSEEN_CHECKS_DUE
from outbound.events import EventApplier
from outbound.history import HistoryLimits
from outbound.outbox import QUEUED_EMAILS, OutboxStore
from outbound.render import Branding, Renderer, available_locales, find_templates, negotiate_locale
from outbound.send import Sender, sender_from_url
from outbound.unseen_check import UnseenChecker, UnseenStore, as_teammate_replies

__all__ = ["SWEEP_GRACE", "Gateway", "build_gateway", "build_smtp_server", "utcnow"]


def utcnow() -> datetime:
    """The current time, timezone-aware (the default clock)."""
    return datetime.now(UTC)


def _default_extractor() -> Extractor:
    from inbound.extract import extract_reply

    return extract_reply


def _reply_markers() -> dict[str, str]:
    from inbound.extract import REPLY_ABOVE_MARKERS

    return dict(REPLY_ABOVE_MARKERS)


def _default_locale(settings: Settings, folder: Path) -> str:
    """``GATEWAY_DEFAULT_LOCALE`` as a locale that has a catalog; a :class:`ConfigError` if none fits."""
    available = available_locales(folder)
    locale = negotiate_locale(settings.default_locale, available, "")
    if not locale:
        raise ConfigError(
            f"{PREFIX}DEFAULT_LOCALE: no email catalog for {settings.default_locale!r};"
            f" known: {', '.join(sorted(available))}"
        )
    return locale


@dataclass
class Gateway:
    """Every part of the gateway, wired; the runners in ``gateway.run`` start the ones they need."""

    settings: Settings
    clock: Callable[[], datetime]
    db: Database
    tickets: TicketStore
    outbox: OutboxStore
    inbound: InboundStore
    keyring: Keyring
    api_keys: tuple[str, ...]
    renderer: Renderer
    events: EventApplier
    deliverer: Deliverer
    unseen: UnseenChecker
    recipients: RecipientCheck
    pipeline: InboundPipeline
    jobs: Jobs
    sweep: Sweep
    sender: Sender
    webhooks: WebhookStore
    delivery: DeliveryLoop
    messenger: MessengerStore
    signal: ChangeSignal
    hub: Hub
    messenger_secret: bytes
    #: Hands stored inbound messages to the pipeline in gathered jobs (``gateway.gather``).
    stored_mail: Gather
    webhook_deliverer: WebhookDeliverer | None = None
    preparing: PreparingProcesses | None = None


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
    db = Database.from_url(settings.database_url)
    if migrate_sqlite and db.sqlite:
        migrate(db.engine)
    keys = settings.secret_keys or (
        (1, get_or_create(db, "reply_token_key_1", lambda: secrets.token_urlsafe(32)).encode()),
    )
    api_keys = settings.api_keys or (get_or_create(db, "api_key", lambda: "w2c_" + secrets.token_urlsafe(24)),)
    messenger_secret = settings.messenger_secret or get_or_create(
        db, "messenger_secret", lambda: secrets.token_urlsafe(32)
    )
    keyring = Keyring(keys, settings.reply_domain)
    told = settings.helpdesk_webhook_url if settings.helpdesk_webhook_secret else None
    delivery = DeliveryLoop(db=db, clock=clock, webhook_url=told, policy=BouncePolicy(
        soft_points=settings.bounce_soft_points, hard_points=settings.bounce_hard_points,
        suppress_at=settings.bounce_suppress_at, forget_after=timedelta(days=settings.bounce_forget_days),
    ))
    tickets, inbound, webhooks = TicketStore(db), InboundStore(db), WebhookStore(db)
    outbox = OutboxStore(db, announce=delivery.announce)
    messenger = MessengerStore(db)
    jobs = Jobs(broker if broker is not None else make_broker(settings.redis_url))
    templates = find_templates()
    renderer = Renderer(
        templates,
        branding=Branding(
            product_name=settings.product_name,
            color=settings.brand_color,
            logo_url=settings.logo_url,
            footer_address=settings.footer_address,
        ),
        markers=_reply_markers(),
        messenger_url=settings.messenger_url,
        default_locale=_default_locale(settings, templates),
    )
    sender = sender if sender is not None else sender_from_url(settings.smtp_relay_url)
    history = HistoryLimits(max_entries=settings.history_max_entries, max_chars=settings.history_max_chars)
    events = EventApplier(
        db=db, renderer=renderer, keyring=keyring, from_address=settings.from_address,
        unseen_delay=timedelta(seconds=settings.unseen_delay_seconds), history=history,
    )
    deliverer = Deliverer(
        outbox=outbox, sender=sender, return_path=keyring.bounce_address_for,
        clock=clock, retry_later=lambda pk, delay: jobs.send(DELIVER_EMAILS, [pk], delay_seconds=delay),
    )
    unseen = UnseenChecker(
        store=UnseenStore(db),
        draft_email=lambda ticket, rows, so_far, now: events.reply_email(
            ticket, as_teammate_replies(rows), now=now, history=so_far
        ),
        history=history,
        schedule=jobs.check_unseen,
        clock=clock,
        delay=timedelta(seconds=settings.unseen_delay_seconds),
        max_wait=timedelta(seconds=settings.unseen_max_wait_seconds),
    )
    recipients = RecipientCheck(keyring=keyring, ticket_by_key=tickets.get_by_key)
    processes = settings.pipeline_processes if settings.pipeline_processes is not None else default_processes()
    preparing = PreparingProcesses(settings, processes) if processes and not db.in_memory else None
    pipeline = InboundPipeline(
        inbound=inbound, recipients=recipients, ticket_by_key=tickets.get_by_key,
        extractor=extractor or _default_extractor(), clock=clock,
        trusted_authserv_id=settings.trusted_authserv_id, webhook_url=settings.helpdesk_webhook_url,
        bounce_received=delivery.received, preparer=preparing.prepare if preparing is not None else None,
    )
    signal = signal if signal is not None else _signal(settings.redis_url)
    webhook_deliverer = None
    if settings.helpdesk_webhook_url and settings.helpdesk_webhook_secret:
        webhook_deliverer = WebhookDeliverer(
            store=webhooks, secret=settings.helpdesk_webhook_secret,
            poster=webhook_poster or HttpPoster(connections=settings.webhook_concurrency + settings.worker_threads),
            clock=clock, retry_later=lambda pk, delay: jobs.send(DELIVER_WEBHOOK, [pk], delay_seconds=delay),
            concurrency=settings.webhook_concurrency, batch=settings.webhook_batch,
        )
        jobs.declare(DELIVER_WEBHOOK, webhook_deliverer.deliver_job, queue=QUEUES[DELIVER_WEBHOOK])
        db.after_commit(WEBHOOKS_QUEUED, jobs.deliver_webhooks)
    jobs.declare(DELIVER_EMAILS, deliverer.deliver_many, queue=QUEUES[DELIVER_EMAILS])
    jobs.declare(PROCESS_INBOUND, pipeline.process_job, queue=QUEUES[PROCESS_INBOUND])
    jobs.declare(FAN_OUT_INBOUND, jobs.fan_out_inbound, queue=QUEUES[FAN_OUT_INBOUND])
    jobs.declare(UNSEEN_CHECK, unseen.check, queue=QUEUES[UNSEEN_CHECK])
    db.after_commit(QUEUED_EMAILS, jobs.deliver_emails)
    stored_mail = Gather(jobs.process_inbound, window=INBOUND_GATHER_SECONDS, most=INBOUND_BATCH, name="inbound-gather")
    db.after_commit(STORED_MAIL, stored_mail.add)
    db.after_commit(UNSEEN_CHECKS_DUE, unseen.schedule_due)
    db.after_commit(CUSTOMERS_CHANGED, publisher(signal.publish_many))
    sweep = Sweep(
        jobs=jobs, clock=clock,
        due_emails=lambda before: outbox.due(before=before),
        unprocessed_mail=lambda before, now: inbound.sweep(received_before=before, now=now,
                                                           again_after=SWEEP_AGAIN_AFTER),
        overdue_unseen=lambda grace: sorted(unseen.overdue_tickets(grace=grace)),
        due_webhooks=(lambda before: webhooks.due(before=before)) if webhook_deliverer is not None else None,
    )
    return Gateway(
        settings=settings, clock=clock, db=db, tickets=tickets, outbox=outbox, inbound=inbound, keyring=keyring,
        api_keys=api_keys, renderer=renderer, events=events, deliverer=deliverer, unseen=unseen,
        recipients=recipients, pipeline=pipeline, jobs=jobs, sweep=sweep, sender=sender, webhooks=webhooks,
        delivery=delivery, stored_mail=stored_mail,
        webhook_deliverer=webhook_deliverer, preparing=preparing, messenger=messenger, signal=signal,
        hub=_hub(messenger, signal, poll_seconds=settings.messenger_poll_seconds),
        messenger_secret=messenger_secret.encode(),
    )


def build_smtp_server(gw: Gateway, *, port: int | None = None) -> InboundServer:
    """The inbound SMTP (or LMTP) server from the settings, storing through the inbox's unit of work
    (its committer thread must run: ``gw.db.mail.start()``)."""
    s = gw.settings
    gate = ConnectionGate(
        s.max_connections, per_peer=s.smtp_max_connections_per_peer, bytes_budget=s.smtp_max_bytes_in_flight
    )
    handler = InboundHandler(
        refusal=gw.recipients.refusal,
        commit=lambda message: gw.inbound.store_async(message, now=gw.clock()),
        max_message_bytes=s.max_message_bytes,
        lmtp=s.smtp_lmtp,
        stopping=lambda: gate.stopping,
        cheap_refusal=gw.recipients.is_cached,
        max_recipients=s.smtp_max_recipients,
    )
    limits = ServerLimits(
        max_message_bytes=s.max_message_bytes,
        max_connections=s.max_connections,
        idle_timeout=s.smtp_idle_timeout_seconds,
        data_timeout=s.smtp_data_timeout_seconds,
        max_session_seconds=s.smtp_max_session_seconds,
        max_commands_per_message=s.smtp_max_commands_per_message,
        max_failures=s.smtp_max_failures,
        failure_delay=s.smtp_failure_delay_seconds,
    )
    tls = tls_context(s.smtp_tls_cert, s.smtp_tls_key) if s.smtp_tls_cert and s.smtp_tls_key else None
    return InboundServer(
        handler, host=s.smtp_host, port=s.smtp_port if port is None else port, limits=limits, tls=tls,
        lmtp=s.smtp_lmtp, reuse_port=s.smtp_processes > 1, gate=gate, hostname=s.smtp_hostname,
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
