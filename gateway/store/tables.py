"""The store's tables (SQLAlchemy Core). Migrations in ``migrations/`` create exactly these."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

__all__ = [
    "bounce_scores",
    "changes",
    "customers",
    "delivery_events",
    "entries",
    "events",
    "inbound_messages",
    "kv",
    "metadata",
    "outbox",
    "suppressions",
    "tickets",
    "webhook_deliveries",
]


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime given to the store: {value!r}")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        moment: datetime = value
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)

    # On SQLite the value is text. SQLAlchemy's own conversion builds a dict and runs a regex for
    # each value (several microseconds, eight values per event); these write the same text
    # ("2026-11-26 12:00:22.500000") and read it, or an older "... +00:00", with the datetime
    # module's own ISO functions.
    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)

        def write(value: datetime | None) -> str | None:
            if value is None:
                return None
            if value.tzinfo is None:
                raise ValueError(f"naive datetime given to the store: {value!r}")
            return _sqlite_text(value)

        return write

    def result_processor(self, dialect: Dialect, coltype: object) -> Callable[[Any], Any] | None:
        if dialect.name != "sqlite":
            return super().result_processor(dialect, coltype)

        def read(value: str | None) -> datetime | None:
            if value is None:
                return None
            moment = datetime.fromisoformat(value)
            return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)

        return read


@functools.lru_cache(maxsize=256)  # an event writes the same few moments several times
def _sqlite_text(value: datetime) -> str:
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s",
        "pk": "pk_%(table_name)s",
    }
)

#: Small values the gateway generates for itself (a reply-token key, an API key).
kv = Table(
    "kv",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

#: Every help-desk event applied, with the answer given, so a repeated id answers the same.
events = Table(
    "events",
    metadata,
    Column("id", String(200), primary_key=True),
    Column("type", String(40), nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
    Column("response", Text, nullable=False),
    #: SHA-256 of the event's body (hex): a reused id with another body is refused. NULL before 0004.
    Column("fingerprint", String(64), nullable=True),
)

customers = Table(
    "customers",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("external_id", String(200), nullable=False, unique=True),
    Column("email", String(320), nullable=False),
    Column("name", String(200), nullable=False),
    Column("locale", String(35), nullable=False),
    #: IANA time zone of the customer's emails (NULL: unknown, UTC). Added in 0006.
    Column("time_zone", String(64), nullable=True),
)

tickets = Table(
    "tickets",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("external_id", String(200), nullable=False, unique=True),
    Column("customer_pk", Integer, ForeignKey("customers.pk"), nullable=False, index=True),
    Column("title", String(500), nullable=False),
    Column("description", Text, nullable=False),
    Column("state", String(32), nullable=False),
    Column("created_by", String(16), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_activity_at", UTCDateTime, nullable=False),
    #: Message-ID of the ticket's first email: every later email points at it.
    Column("root_message_id", String(250), nullable=True),
)


#: The teammate replies still waiting for their unseen check (SQL, the partial index's condition; a query
#: must spell the same terms, with the literal inline, for SQLite to use the index).
UNSEEN_WAITING = "kind = 'teammate_reply' AND claimed_at IS NULL AND seen_at IS NULL"

#: The ticket's thread as the customer sees it, oldest first.
entries = Table(
    "entries",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("ticket_pk", Integer, ForeignKey("tickets.pk"), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("text", Text, nullable=False),
    Column("html", Text, nullable=True),
    #: Customer email replies: what the extractor split off, and the rule that cut it (since 0008).
    Column("signature", Text, nullable=True),
    Column("trimmed", Text, nullable=True),
    Column("rule", String(40), nullable=True),
    Column("author_name", String(200), nullable=True),
    Column("channel", String(16), nullable=True),
    #: The help desk's id for a teammate reply.
    Column("external_id", String(200), nullable=True),
    #: Inbound Message-ID (or content hash) of a customer reply: lands once per ticket.
    Column("dedup_key", String(250), nullable=True),
    Column("inbound_pk", Integer, ForeignKey("inbound_messages.pk"), nullable=True),
    Column("state_from", String(32), nullable=True),
    Column("state_to", String(32), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    #: Unseen check (teammate replies): when the email becomes due, when seen, when emailed.
    Column("due_at", UTCDateTime, nullable=True),
    Column("seen_at", UTCDateTime, nullable=True),
    Column("claimed_at", UTCDateTime, nullable=True),
    Column("emailed_outbox_pk", Integer, nullable=True),
    UniqueConstraint("ticket_pk", "external_id", name="uq_entries_ticket_external_id"),
    UniqueConstraint("ticket_pk", "dedup_key", name="uq_entries_ticket_dedup_key"),
    Index("ix_entries_ticket_pk_pk", "ticket_pk", "pk"),
    Index("ix_entries_due_at", "due_at"),
    #: Teammate replies waiting for their unseen check, by due time (migration 0009).
    Index("ix_entries_unseen_due", "due_at", postgresql_where=text(UNSEEN_WAITING), sqlite_where=text(UNSEEN_WAITING)),
)

#: Every outbound email, stored before it is handed to the broker.
outbox = Table(
    "outbox",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("ticket_pk", Integer, ForeignKey("tickets.pk"), nullable=True, index=True),
    Column("kind", String(40), nullable=False),
    Column("to_addr", String(320), nullable=False),
    Column("subject", String(500), nullable=False),
    Column("message_id", String(250), nullable=False, unique=True),
    Column("raw", LargeBinary, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("next_attempt_at", UTCDateTime, nullable=True),
    Column("last_error", Text, nullable=True),
    Index("ix_outbox_status_next_attempt_at", "status", "next_attempt_at"),
    Index("ix_outbox_status_pk", "status", "pk"),  # queued emails, oldest first
)

#: Addresses that must not be emailed (hard bounces, complaints, soft bounces that added up,
#: 5.1.x answers of the relay), each with its evidence.
suppressions = Table(
    "suppressions",
    metadata,
    Column("address", String(320), primary_key=True),
    Column("reason", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("kind", String(16), nullable=True),  # hard, soft, complaint, relay (NULL before 0006)
    Column("outbox_pk", Integer, nullable=True),  # the email whose failure is the evidence
    Column("inbound_pk", Integer, nullable=True),  # the bounce or complaint received, if any
    Column("status_code", String(16), nullable=True),
    Column("diagnostic", Text, nullable=True),
)

#: What happened to each outbound email, in order: its delivery ledger (``queued`` is its row's
#: ``created_at``): sent, deferred, failed, suppressed, bounced, complained.
delivery_events = Table(
    "delivery_events",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("outbox_pk", Integer, ForeignKey("outbox.pk"), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("status_code", String(16), nullable=True),
    Column("detail", Text, nullable=True),
    Column("inbound_pk", Integer, nullable=True),  # the bounce or complaint that told us
    Index("ix_delivery_events_outbox_pk", "outbox_pk"),
    Index("ix_delivery_events_inbound_pk", "inbound_pk"),
)

#: Soft-bounce evidence per address: it adds up, and is forgotten after a while.
bounce_scores = Table(
    "bounce_scores",
    metadata,
    Column("address", String(320), primary_key=True),
    Column("score", Integer, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

#: Raw inbound messages, committed before SMTP answers 250.
inbound_messages = Table(
    "inbound_messages",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("received_at", UTCDateTime, nullable=False),
    Column("mail_from", String(320), nullable=False),
    Column("rcpt_to", Text, nullable=False),
    Column("raw", LargeBinary, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("status", String(24), nullable=False),
    Column("ticket_pk", Integer, ForeignKey("tickets.pk"), nullable=True),
    Column("threaded_by", String(24), nullable=True),
    Column("detail", Text, nullable=True),
    Column("processed_at", UTCDateTime, nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
    #: What parsing found (for the quarantine, the audit and the webhook); NULL until parsed.
    Column("message_id", String(250), nullable=True),
    Column("from_addr", String(320), nullable=True),
    Column("subject", String(500), nullable=True),
    Column("attachments", Text, nullable=True),
    #: Set when an operator released the message from quarantine: its sender is not checked again.
    Column("released_at", UTCDateTime, nullable=True),
    #: When the sweeper last enqueued it (so a backlog gets one extra job per message at most a minute).
    Column("swept_at", UTCDateTime, nullable=True),
    Index("ix_inbound_messages_status", "status"),
)

#: One help-desk webhook call per landed customer reply, swept and retried like outbound email.
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("entry_pk", Integer, ForeignKey("entries.pk"), nullable=True, unique=True),
    Column("url", Text, nullable=False),
    Column("payload", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("next_attempt_at", UTCDateTime, nullable=True),
    Column("last_error", Text, nullable=True),
    Index("ix_webhook_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
)

#: What changed in a customer's Messenger view, in commit order per customer: the Messenger's
#: event stream reads it (``pk`` is the event id a reconnecting Messenger resumes from).
changes = Table(
    "changes",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("customer_pk", Integer, ForeignKey("customers.pk"), nullable=False),
    Column("ticket_pk", Integer, ForeignKey("tickets.pk"), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("entry_pk", Integer, ForeignKey("entries.pk"), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_changes_customer_pk_pk", "customer_pk", "pk"),
)
