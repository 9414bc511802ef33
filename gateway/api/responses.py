"""Response bodies of the help desk's and the operators' routes (events, inbound, quarantine, outbox, health).

The Messenger's answers live in ``gateway.messenger.wire`` (its stream writes the same shapes);
the error body in ``gateway.api.errors``. The CLI prints these models too, so its JSON and the
API's agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import AliasChoices, Field

from gateway.models import OutboxEmail, OutboxStatus
from gateway.wire_types import Instant, OutModel
from inbound.inbox import StoredInbound
from outbound.outbox import DeliveryEvent, LedgerKind

__all__ = [
    "AttachmentOut",
    "EventAppliedOut",
    "HealthOut",
    "InboundMessageOut",
    "InboundReceivedOut",
    "OutboxEmailOut",
    "OutboxOut",
    "QuarantineOut",
    "QuarantinedMessageOut",
    "ReadyOut",
    "ReleasedOut",
]


class HealthOut(OutModel):
    """Liveness."""

    status: Literal["ok"]


class ReadyOut(OutModel):
    """Readiness: whether each thing this process needs answers (``ok``) or not (``down``)."""

    status: Literal["ready", "unavailable"]
    checks: dict[str, Literal["ok", "down"]] = Field(
        description="One entry per check: `store` always, `broker` when Redis is configured."
    )


class EventAppliedOut(OutModel):
    """What an event did; a repeat of the event id answers the first answer again."""

    event_id: str
    ticket_id: str
    actions: list[str] = Field(
        description="what the gateway did, in order: `thread:<entry kind>`, `state:<state>`, `email:<kind>`, "
        "`unseen_check:<ISO 8601 due time>`"
    )


class InboundReceivedOut(OutModel):
    """A raw message stored for the inbound pipeline."""

    id: int = Field(description="the stored message's id (the quarantine routes take it)")
    status: Literal["received"]


class AttachmentOut(OutModel):
    """An attachment (or inline image) of an inbound message."""

    filename: str | None
    content_type: str
    size: int
    inline: bool


class InboundMessageOut(OutModel):
    """A stored inbound message: envelope, what parsing found, and where it ended."""

    id: int
    received_at: Instant
    status: str = Field(
        description="received, landed, duplicate, unthreaded, quarantined, auto_reply, bounce or failed"
    )
    detail: str | None = Field(description="why it ended so (the reason it is held, for the quarantine)")
    mail_from: str = Field(description="the envelope sender; empty for a bounce")
    rcpt_to: list[str]
    from_addr: str | None = Field(
        serialization_alias="from", validation_alias=AliasChoices("from", "from_addr"), description="the From address"
    )
    subject: str | None
    message_id: str | None
    ticket_key: int | None
    threaded_by: str | None
    attachments: list[AttachmentOut]
    size: int = Field(description="bytes of the raw message")

    @classmethod
    def of(cls, message: StoredInbound) -> InboundMessageOut:
        """``message`` without its source."""
        return cls(**_inbound_fields(message))


class QuarantinedMessageOut(InboundMessageOut):
    """A stored inbound message with its source (``raw``, decoded as UTF-8, invalid bytes replaced)."""

    raw: str

    @classmethod
    def of(cls, message: StoredInbound) -> QuarantinedMessageOut:
        """``message`` with its source."""
        return cls(**_inbound_fields(message), raw=message.raw.decode("utf-8", "replace"))


def _inbound_fields(message: StoredInbound) -> dict[str, Any]:
    return {
        "id": message.pk,
        "received_at": message.received_at.isoformat(),
        "status": message.status,
        "detail": message.detail,
        "mail_from": message.mail_from,
        "rcpt_to": list(message.rcpt_to),
        "from_addr": message.from_addr,
        "subject": message.subject,
        "message_id": message.message_id,
        "ticket_key": message.ticket_key,
        "threaded_by": message.threaded_by,
        "attachments": list(message.attachments),
        "size": len(message.raw),
    }


class QuarantineOut(OutModel):
    """Quarantined inbound messages, newest first."""

    messages: list[InboundMessageOut]


class ReleasedOut(OutModel):
    """A quarantined message released: it goes through the pipeline again."""

    id: int
    status: Literal["released"]


class DeliveryEventOut(OutModel):
    """One line of an email's delivery ledger."""

    kind: str = Field(description="queued, sent, deferred, failed, suppressed, bounced or complained")
    at: Instant
    status_code: str | None = Field(description="the enhanced status code (5.1.1) when one was given")
    detail: str | None = Field(description="the relay's or the remote server's words, the next attempt, ...")
    inbound_id: int | None = Field(description="the bounce or complaint received (an inbound message id)")

    @classmethod
    def of(cls, event: DeliveryEvent) -> DeliveryEventOut:
        """``event`` as the API shows it."""
        return cls(kind=event.kind.value, at=event.at.isoformat(), status_code=event.status_code,
                   detail=event.detail, inbound_id=event.inbound_pk)


class OutboxEmailOut(OutModel):
    """An outbound email: where it is on its way out, its ledger, and its full source."""

    id: int
    ticket_key: int | None
    kind: str = Field(description="the template: ticket_created, teammate_reply, state_changed")
    to: str
    subject: str
    message_id: str
    status: OutboxStatus
    attempts: int
    created_at: Instant
    updated_at: Instant
    last_error: str | None
    next_attempt_at: Instant | None = Field(description="when the next attempt is due")
    raw: str = Field(description="the full source, decoded as UTF-8")
    history: list[DeliveryEventOut] = Field(description="what happened to it, oldest first, from queued on")

    @classmethod
    def of(cls, email: OutboxEmail, ledger: Sequence[DeliveryEvent] = ()) -> OutboxEmailOut:
        """``email`` with its source and its ledger (``queued`` is when it was stored)."""
        queued = DeliveryEvent(LedgerKind.QUEUED, email.created_at)
        return cls(
            id=email.pk,
            ticket_key=email.ticket_key,
            kind=email.kind,
            to=email.to,
            subject=email.subject,
            message_id=email.message_id,
            status=email.status,
            attempts=email.attempts,
            created_at=email.created_at.isoformat(),
            updated_at=email.updated_at.isoformat(),
            last_error=email.last_error,
            next_attempt_at=email.next_attempt_at.isoformat() if email.next_attempt_at else None,
            raw=email.raw.decode("utf-8", "replace"),
            history=[DeliveryEventOut.of(e) for e in (queued, *ledger)],
        )


class OutboxOut(OutModel):
    """Outbound emails, newest first."""

    emails: list[OutboxEmailOut]
