"""Plain records passed between the pure core and the adapters (no I/O, no ORM)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

__all__ = [
    "Customer",
    "Entry",
    "EntryKind",
    "InboundStatus",
    "OutboxEmail",
    "OutboxStatus",
    "RawMessage",
    "TeammateReply",
    "Ticket",
    "TicketCreated",
    "TicketHistory",
    "TicketReplied",
    "TicketState",
    "TicketStateChanged",
    "WebhookStatus",
]


class TicketState(StrEnum):
    """The states a ticket can be in, as the help desk names them."""

    SUBMITTED = "submitted"
    IN_PROGRESS = "in_progress"
    WAITING_ON_CUSTOMER = "waiting_on_customer"
    RESOLVED = "resolved"
    CLOSED = "closed"


class EntryKind(StrEnum):
    """What a thread entry records."""

    TICKET_CREATED = "ticket_created"
    TEAMMATE_REPLY = "teammate_reply"
    CUSTOMER_REPLY = "customer_reply"
    STATE_CHANGED = "state_changed"
    #: Quiet: an email to the customer could not be delivered (they learn their address is wrong).
    EMAIL_UNDELIVERABLE = "email_undeliverable"


class OutboxStatus(StrEnum):
    """Where an outbound email is on its way out."""

    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    RETRYING = "retrying"
    FAILED = "failed"
    SUPPRESSED = "suppressed"


class InboundStatus(StrEnum):
    """Where a stored inbound message ended (``received`` until the pipeline has processed it)."""

    RECEIVED = "received"
    LANDED = "landed"
    DUPLICATE = "duplicate"
    UNTHREADED = "unthreaded"
    QUARANTINED = "quarantined"
    AUTO_REPLY = "auto_reply"
    BOUNCE = "bounce"
    FAILED = "failed"


class WebhookStatus(StrEnum):
    """Where a help-desk webhook call is: retried until a 2xx, ``failed`` after the last attempt."""

    QUEUED = "queued"
    SENDING = "sending"
    RETRYING = "retrying"
    DELIVERED = "delivered"
    FAILED = "failed"


@dataclass(frozen=True)
class RawMessage:
    """An inbound message as received, before it is stored: envelope and bytes."""

    mail_from: str
    rcpt_to: tuple[str, ...]
    raw: bytes


@dataclass(frozen=True, kw_only=True)
class Customer:
    """The customer a ticket belongs to."""

    id: str
    email: str
    name: str
    locale: str = "en"
    #: IANA time zone (``Europe/Berlin``) the customer's emails show times in; None: UTC.
    time_zone: str | None = None


@dataclass(frozen=True, kw_only=True)
class Ticket:
    """A ticket as the gateway keeps it; ``key`` is the gateway's own number for it."""

    key: int
    id: str
    title: str
    description: str
    state: TicketState
    created_by: str
    created_at: datetime
    last_activity_at: datetime
    customer: Customer
    root_message_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class Entry:
    """One entry of a ticket's thread."""

    kind: EntryKind
    text: str
    created_at: datetime
    author_name: str | None = None
    channel: str | None = None
    external_id: str | None = None
    state_from: str | None = None
    state_to: str | None = None


@dataclass(frozen=True, kw_only=True)
class OutboxEmail:
    """An outbound email as stored: its full source and where it is on its way out."""

    pk: int
    ticket_key: int | None
    kind: str
    to: str
    subject: str
    message_id: str
    raw: bytes
    status: OutboxStatus
    attempts: int
    created_at: datetime
    updated_at: datetime
    last_error: str | None = None
    next_attempt_at: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class TicketCreated:
    """Help-desk event: a ticket was created (by a teammate or by the customer)."""

    event_id: str
    occurred_at: datetime
    ticket_id: str
    title: str
    description: str
    state: TicketState
    created_by: str
    customer: Customer


@dataclass(frozen=True, kw_only=True)
class TeammateReply:
    """A teammate's reply on a ticket: ``id`` is the help desk's, ``html`` is optional."""

    id: str
    author_name: str
    text: str
    html: str | None
    created_at: datetime


@dataclass(frozen=True, kw_only=True)
class TicketReplied:
    """Help-desk event ``ticket.reply``: a teammate answered on the ticket."""

    event_id: str
    occurred_at: datetime
    ticket_id: str
    reply: TeammateReply


@dataclass(frozen=True, kw_only=True)
class TicketStateChanged:
    """Help-desk event ``ticket.state_changed``; the state names are checked by the policy."""

    event_id: str
    occurred_at: datetime
    ticket_id: str
    state_from: str
    state_to: str


@dataclass(frozen=True, kw_only=True)
class TicketHistory:
    """What the policy needs to know of a ticket: its state now and every state it has had."""

    state: TicketState
    states_seen: frozenset[TicketState]
