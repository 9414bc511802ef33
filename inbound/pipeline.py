"""The inbound pipeline: a stored raw message -> parsed, threaded, verified, extracted, landed."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from gateway.errors import MalformedMessage, TokenError
from gateway.models import Ticket
from gateway.store.inbound import InboundStatus, InboundStore
from inbound.parse import ParsedEmail, parse_email
from inbound.recipients import RecipientCheck

__all__ = ["Extracted", "InboundPipeline", "Outcome", "dedup_key", "preview"]


class Extracted(Protocol):
    """What a reply extractor returns (see ``inbound.extract``)."""

    @property
    def text(self) -> str: ...
    @property
    def signature(self) -> str: ...
    @property
    def quoted(self) -> str: ...
    @property
    def rule(self) -> str: ...


Extractor = Callable[[str, str | None], Extracted]


@dataclass(frozen=True)
class Outcome:
    """Where one inbound message ended and why."""

    status: str
    detail: str | None = None
    ticket_key: int | None = None
    threaded_by: str | None = None


def dedup_key(parsed: ParsedEmail, raw: bytes) -> str:
    """The message's identity for exactly-once landing: its Message-ID, else a content hash."""
    if parsed.message_id:
        return parsed.message_id[:250]
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def extract(parsed: ParsedEmail, extractor: Extractor) -> Extracted:
    """Run ``extractor`` on the message's text part (HTML given alongside when there is one)."""
    return extractor(parsed.text or "", parsed.html)


class InboundPipeline:
    """Processes stored inbound messages; each message ends in exactly one recorded status."""

    def __init__(
        self,
        *,
        inbound: InboundStore,
        recipients: RecipientCheck,
        extractor: Extractor,
        clock: Callable[[], datetime],
    ) -> None:
        self._inbound = inbound
        self._recipients = recipients
        self._extractor = extractor
        self._clock = clock

    def process(self, pk: int) -> Outcome | None:
        """Process message ``pk`` once; None if it is unknown or was processed before."""
        stored = self._inbound.get(pk)
        if stored is None or stored.status != InboundStatus.RECEIVED:
            return None
        outcome = self._decide_and_land(pk, stored.raw, stored.rcpt_to)
        if outcome.status != InboundStatus.LANDED and outcome.status != InboundStatus.DUPLICATE:
            self._inbound.mark(
                pk, outcome.status, now=self._clock(), detail=outcome.detail,
                ticket_key=outcome.ticket_key, threaded_by=outcome.threaded_by,
            )
        return outcome

    def _decide_and_land(self, pk: int, raw: bytes, rcpt_to: tuple[str, ...]) -> Outcome:
        try:
            parsed = parse_email(raw)
        except MalformedMessage as exc:
            return Outcome(InboundStatus.FAILED, str(exc))
        ticket = self._thread(rcpt_to)
        if ticket is None:
            return Outcome(InboundStatus.UNTHREADED, "no valid reply address among the recipients")
        if (parsed.from_addr or "") != ticket.customer.email.strip().lower():
            return Outcome(
                InboundStatus.QUARANTINED,
                f"sender {parsed.from_addr!r} is not the ticket's customer",
                ticket.key,
                "token",
            )
        reply = extract(parsed, self._extractor)
        if not reply.text.strip():
            return Outcome(InboundStatus.FAILED, "no reply text found", ticket.key, "token")
        landed = self._inbound.land_customer_reply(
            pk, ticket_key=ticket.key, text=reply.text, dedup_key=dedup_key(parsed, raw),
            threaded_by="token", now=self._clock(),
        )
        status = InboundStatus.LANDED if landed else InboundStatus.DUPLICATE
        return Outcome(status, None, ticket.key, "token")

    def _thread(self, rcpt_to: tuple[str, ...]) -> Ticket | None:
        for address in rcpt_to:
            try:
                return self._recipients.ticket_for(address)
            except TokenError:
                continue
        return None


def preview(raw: bytes, extractor: Extractor) -> dict[str, Any]:
    """What the pipeline would make of ``raw``, as JSON-ready data, touching nothing."""
    try:
        parsed = parse_email(raw)
    except MalformedMessage as exc:
        return {"ok": False, "error": str(exc)}
    reply = extract(parsed, extractor)
    return {
        "ok": True,
        "message_id": parsed.message_id,
        "dedup_key": dedup_key(parsed, raw),
        "from": parsed.from_addr,
        "subject": parsed.subject,
        "in_reply_to": list(parsed.in_reply_to),
        "references": list(parsed.references),
        "attachments": [a.__dict__ for a in parsed.attachments],
        "reply": {"text": reply.text, "signature": reply.signature, "quoted": reply.quoted, "rule": reply.rule},
    }
