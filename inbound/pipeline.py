"""The inbound pipeline: a stored raw message -> parsed, classified, threaded, verified, extracted, landed.

Each stored message ends in exactly one recorded status. Failures are the specific errors of
:mod:`gateway.errors`; :mod:`inbound.rejections` says where each one ends (never a reply to
the sender: the message was accepted with 250 long ago).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from gateway.errors import AutoReply, Bounce, InboundError, MalformedMessage, NoReplyText, TokenError, Unthreaded
from gateway.logs import event, one_line
from gateway.metrics import EXTRACTION_RULES, INBOUND_OUTCOMES, child
from gateway.models import InboundStatus, Ticket
from gateway.store.db import is_lost_store
from inbound.attachments import attachment_path
from inbound.bounce_report import read_bounce
from inbound.classify import MessageKind, classify
from inbound.inbox import Ending, InboundStore, Landing, ParsedFields, ProcessedElsewhere, ReplyParts, StoredInbound
from inbound.parse import Attachment, ParsedEmail, parse_email
from inbound.recipients import RecipientCheck
from inbound.rejections import stored_status
from inbound.reply_html import reply_html
from inbound.thread import ThreadMatch, choose_thread
from inbound.verify import check_sender
from inbound.webhook import WebhookDraft

log = logging.getLogger(__name__)

__all__ = [
    "LARGE_MESSAGE_BYTES",
    "WEBHOOK_PAYLOAD_VERSION",
    "Extracted",
    "InboundPipeline",
    "Outcome",
    "Prepared",
    "Preparer",
    "attachments_out",
    "dedup_key",
    "preview",
    "webhook_payload",
]


#: Times processing a message may crash before it ends ``failed`` (each sweep retries it once).
PROCESS_ATTEMPTS = 5
#: Messages larger than this are processed one at a time per process: parsing takes several times a
#: message's size in memory (about 8x for a 20 MB one, most of it in flanker), so the worker threads
#: of one process must not parse several large ones at once. Smaller messages are not held back.
LARGE_MESSAGE_BYTES = 4 * 1024 * 1024


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
#: Prepares the messages of a batch elsewhere (the preparing processes): pks and the time -> prepared.
Preparer = Callable[[Sequence[int], datetime], "list[Prepared]"]


@dataclass(frozen=True)
class Outcome:
    """Where one inbound message ended and why."""

    status: str
    detail: str | None = None
    ticket_key: int | None = None
    threaded_by: str | None = None
    entry_pk: int | None = None
    rule: str | None = None  # the extraction rule, when the reply landed


def dedup_key(parsed: ParsedEmail, raw: bytes) -> str:
    """The message's identity for exactly-once landing: its Message-ID, else a content hash."""
    if parsed.message_id:
        return parsed.message_id[:250]
    return "sha256:" + hashlib.sha256(raw).hexdigest()


@dataclass(frozen=True)
class Unextracted:
    """The whole text part, used when the extractor itself fails: the reply lands, history and all."""

    text: str
    signature: str = ""
    quoted: str = ""
    rule: str = "extractor_failed"


def extract(parsed: ParsedEmail, extractor: Extractor) -> Extracted:
    """Run ``extractor`` on the message's text part (HTML given alongside when there is one).

    An extractor bug must not stall a customer's reply in a retry loop: it is logged and the
    whole text part is used instead (keeping every line the customer wrote).
    """
    try:
        return extractor(parsed.text or "", parsed.html)
    except Exception:  # see the docstring; the raw message stays stored for audit
        log.exception("reply extraction failed for %s; using the whole text part", parsed.message_id)
        return Unextracted(parsed.text or "")


def parsed_fields(parsed: ParsedEmail) -> ParsedFields:
    """What is kept of a parsed message on its stored row."""
    return ParsedFields(
        message_id=parsed.message_id, from_addr=parsed.from_addr, subject=parsed.subject,
        attachments=tuple(dict(a.__dict__) for a in parsed.attachments),
    )


#: The version of the ``ticket.customer_reply`` payload (docs/operations.md describes each).
WEBHOOK_PAYLOAD_VERSION = 2


def attachments_out(inbound_id: int, attachments: Sequence[Attachment]) -> list[dict[str, object]]:
    """The attachments as the webhook lists them: metadata and the URL to fetch each (relative to the API)."""
    return [{**a.__dict__, "url": attachment_path(inbound_id, n)} for n, a in enumerate(attachments)]


def webhook_payload(
    stored: StoredInbound, parsed: ParsedEmail, ticket: Ticket, extracted: Extracted, signal: str,
    html: str | None = None,
) -> str:
    """The JSON body announcing a landed reply to the help desk (version :data:`WEBHOOK_PAYLOAD_VERSION`);
    ``html`` is the reply's sanitised HTML when the caller made it already."""
    text = extracted.text.strip()
    if html is None:
        html = reply_html(html=parsed.html, text=text, rule=extracted.rule, inbound_id=stored.pk,
                          attachments=parsed.attachments)
    return json.dumps({
        "type": "ticket.customer_reply",
        "version": WEBHOOK_PAYLOAD_VERSION,
        "ticket": {"id": ticket.id},
        "customer": {"id": ticket.customer.id, "email": ticket.customer.email},
        "reply": {
            "text": text,
            "html": html,
            "signature": extracted.signature.strip("\n"),
            "trimmed": extracted.quoted,
            "rule": extracted.rule,
            "from": parsed.from_addr,
            "subject": parsed.subject,
            "message_id": parsed.message_id,
            "received_at": stored.received_at.isoformat(),
            "threaded_by": signal,
            "inbound_id": stored.pk,
            "attachments": attachments_out(stored.pk, parsed.attachments),
        },
    }, ensure_ascii=False, sort_keys=True)


class _HandledHere(Exception):
    """The message must be processed by the gateway's own process (a bounce: its reading writes)."""


@dataclass(frozen=True)
class Prepared:
    """One message made ready to record, by this process or a preparing one: how it ends (the
    reply to land, or an outcome), or the crash that stopped it, or ``here``: the gateway's own
    process must process it itself (a bounce)."""

    pk: int
    parsed: ParsedFields | None = None
    ending: Landing | Outcome | None = None
    crash: str | None = None
    here: bool = False



def _left_for_the_sweeper(pk: int, error: BaseException) -> None:
    """An outage of the store while processing message ``pk``: not counted against the message (it stays
    received; the sweeper hands it on again once the store is back), logged in one line."""
    log.warning("inbound message %s waits for the store: %s", pk, one_line(error))


def _ending(p: Prepared, now: datetime) -> Ending:
    assert isinstance(p.ending, Outcome)
    o = p.ending
    return Ending(pk=p.pk, status=o.status, now=now, detail=o.detail, ticket_key=o.ticket_key,
                  threaded_by=o.threaded_by, parsed=p.parsed)


class _Trail:
    """What the pipeline learnt so far, so a failure is recorded with it."""

    parsed: ParsedFields | None = None
    match: ThreadMatch | None = None


class InboundPipeline:
    """Processes stored inbound messages; each message ends in exactly one recorded status."""

    def __init__(
        self,
        *,
        inbound: InboundStore,
        recipients: RecipientCheck,
        ticket_by_key: Callable[[int], Ticket | None],
        extractor: Extractor,
        clock: Callable[[], datetime],
        trusted_authserv_id: str | None = None,
        webhook_url: str | None = None,
        bounce_received: Callable[[int, int, Any, str | None], str] | None = None,
        preparer: Preparer | None = None,
    ) -> None:
        self._inbound = inbound
        self._recipients = recipients
        self._ticket_by_key = ticket_by_key
        self._extractor = extractor
        self._clock = clock
        self._trusted = trusted_authserv_id
        self._webhook_url = webhook_url
        self._bounce_received = bounce_received
        self._preparer = preparer
        self._defer_bounces = False
        self._large_lane = threading.Lock()

    def process(self, pk: int) -> Outcome | None:
        """Process message ``pk`` once, in this process; None if it is unknown or was processed before.
        Messages larger than :data:`LARGE_MESSAGE_BYTES` take turns (one at a time in this process)."""
        stored = self._inbound.get(pk)
        if stored is None or stored.status != InboundStatus.RECEIVED:
            return None
        if len(stored.raw) <= LARGE_MESSAGE_BYTES:
            return self._process_here(stored)
        if not self._large_lane.acquire(blocking=False):
            del stored  # not held while waiting its turn: read again once it comes
            self._large_lane.acquire()
            stored = self._inbound.get(pk)
        try:
            if stored is None or stored.status != InboundStatus.RECEIVED:
                return None
            return self._process_here(stored)
        finally:
            self._large_lane.release()

    def _process_here(self, stored: StoredInbound) -> Outcome | None:
        now = self._clock()
        return self._record(self.prepare_batch([stored], now=now), now).get(stored.pk)

    def preparing_copy(self) -> InboundPipeline:
        """This pipeline as a preparing process runs it: bounces are left to the gateway's own process."""
        copy = InboundPipeline.__new__(InboundPipeline)
        copy.__dict__.update(self.__dict__, _preparer=None, _defer_bounces=True)
        return copy

    def process_job(self, pks: int | list[int]) -> None:
        """The job: the messages one transaction stored (a list), or one message."""
        if isinstance(pks, int):
            self.process(pks)
        else:
            self.process_many(pks)

    def process_many(self, pks: Sequence[int]) -> dict[int, Outcome]:
        """Process each message of ``pks`` once: read together, prepared one by one (by the preparing
        processes when there are some), and every ending (landings with their webhook calls,
        quarantines ...) recorded in one unit of work, so the help desk hears of them in one delivery
        job. Large messages, and bounces, are processed here, one at a time."""
        now = self._clock()
        prepared: list[Prepared] | None = None
        if self._preparer is not None:
            try:
                prepared = self._preparer(pks, now)
            except Exception as exc:  # the preparing processes are gone, or the store: this process tries
                if is_lost_store(exc):  # an outage: one line; the messages wait for the store here too
                    log.warning("preparing inbound messages %s elsewhere stopped: %s; preparing them here", list(pks),
                                one_line(exc))
                else:
                    log.warning("preparing inbound messages %s elsewhere failed; preparing them here", list(pks),
                                exc_info=True)
        if prepared is None:
            prepared = self.prepare_many(pks, now=now)
        done = [p for p in prepared if not p.here]
        outcomes = self._record(done, now)
        for pk in set(pks) - {p.pk for p in done}:  # large, bounces, unknown or processed before
            outcome = self.process(pk)
            if outcome is not None:
                outcomes[pk] = outcome
        return outcomes

    def prepare_many(self, pks: Sequence[int], *, now: datetime) -> list[Prepared]:
        """:meth:`prepare_batch` of the messages of ``pks`` still waiting and not large (read together)."""
        return self.prepare_batch(self._inbound.get_many(pks, max_size=LARGE_MESSAGE_BYTES), now=now)

    def prepare_batch(self, batch: Sequence[StoredInbound], *, now: datetime) -> list[Prepared]:
        """Everything but the writing, for each message: parse, classify, thread, verify, extract.
        Reads the store, never writes it (a preparing process runs this)."""
        prepared: list[Prepared] = []
        for stored in batch:
            trail = _Trail()
            try:
                ending: Landing | Outcome = self._prepare(stored, trail, now)
            except _HandledHere:
                prepared.append(Prepared(stored.pk, here=True))
                continue
            except InboundError as exc:
                ticket_key = trail.match.ticket_key if trail.match else None
                signal = trail.match.signal.value if trail.match else None
                ending = Outcome(stored_status(exc), f"{type(exc).__name__}: {exc}", ticket_key, signal)
            except Exception as exc:  # a crash: counted, see _crashed; an outage is not the message's fault
                if is_lost_store(exc):
                    _left_for_the_sweeper(stored.pk, exc)
                    prepared.append(Prepared(stored.pk))  # nothing to record: it stays received
                    continue
                log.error("processing inbound message %s failed: %s: %s", stored.pk, type(exc).__name__, exc,
                          exc_info=exc)
                prepared.append(Prepared(stored.pk, crash=f"{type(exc).__name__}: {exc}"))
                continue
            prepared.append(Prepared(stored.pk, parsed=trail.parsed, ending=ending))
        return prepared

    def _record(self, prepared: Sequence[Prepared], now: datetime) -> dict[int, Outcome]:
        """Record the endings of ``prepared`` in one unit of work; the outcome of each recorded."""
        ready = [p for p in prepared if p.ending is not None]
        endings = [p.ending if isinstance(p.ending, Landing) else _ending(p, now) for p in ready]
        try:
            results = self._inbound.finish(endings)
        except Exception as exc:  # noqa: BLE001 - the store refused the batch: each message stays received
            results = [exc] * len(endings)
        outcomes: dict[int, Outcome] = {}
        for p, result in zip(ready, results, strict=True):
            if isinstance(result, ProcessedElsewhere):
                log.info("inbound message %s was processed by another job meanwhile; left as it ended", p.pk)
                continue
            if isinstance(result, Exception):
                if is_lost_store(result):
                    _left_for_the_sweeper(p.pk, result)
                    continue
                log.error("recording inbound message %s failed: %s: %s", p.pk, type(result).__name__, result,
                          exc_info=result)
                self._crashed(p.pk, f"{type(result).__name__}: {result}")
                continue
            outcome = p.ending
            if isinstance(outcome, Landing):
                status = InboundStatus.LANDED if result is not None else InboundStatus.DUPLICATE
                outcome = Outcome(status, None, outcome.ticket_key, outcome.threaded_by, result, outcome.parts.rule)
            assert outcome is not None
            outcomes[p.pk] = outcome
            self._report(p.pk, p.parsed, outcome)
        for p in prepared:
            if p.crash is not None:
                self._crashed(p.pk, p.crash)
        return outcomes

    def _report(self, pk: int, parsed: ParsedFields | None, outcome: Outcome) -> None:
        child(INBOUND_OUTCOMES, str(outcome.status), outcome.threaded_by or "none").inc()
        if outcome.rule:
            child(EXTRACTION_RULES, outcome.rule).inc()
        event(log, f"inbound.{outcome.status}", inbound_id=pk,
              message_id=parsed.message_id if parsed else None, ticket_key=outcome.ticket_key,
              threaded_by=outcome.threaded_by, rule=outcome.rule, detail=outcome.detail)

    def _crashed(self, pk: int, error: str) -> None:
        """A crash (a bug, or the store refusing a value) is counted, so the sweeper does not retry
        it forever: after :data:`PROCESS_ATTEMPTS` the message ends ``failed``, its bytes kept."""
        try:
            self._inbound.record_crash(pk, error, now=self._clock(), give_up_after=PROCESS_ATTEMPTS)
        except Exception:  # the store is down: the message stays received for the sweeper
            log.warning("could not record the failed attempt on inbound message %s", pk, exc_info=True)

    def _prepare(self, stored: StoredInbound, trail: _Trail, now: datetime) -> Landing:
        """Everything but the writing: the reply to land, or the :class:`InboundError` saying where it ends."""
        # Parsed once here; a bounce may be malformed MIME and is still read (by the bounce reader).
        parsed_or_none: ParsedEmail | None = None
        with contextlib.suppress(MalformedMessage):
            parsed_or_none = parse_email(stored.raw)
        email_key = self._bounce_target(stored, parsed_or_none)
        if email_key is not None and self._defer_bounces:
            raise _HandledHere  # the delivery loop records the bounce as it reads it: not in a preparing process
        if email_key is not None:
            # At an email's own envelope sender: a bounce or complaint about that email (or anything
            # else sent there): never a reply. The delivery loop decides whether it is believed.
            if parsed_or_none is not None:
                trail.parsed = parsed_fields(parsed_or_none)
            report = read_bounce(stored.raw)
            message_id = trail.parsed.message_id if trail.parsed else None
            decided = (self._bounce_received(stored.pk, email_key, report, message_id) if self._bounce_received
                       else "ignored")
            raise Bounce(f"{report.kind.value} at the bounce address of email {email_key}: {decided}")
        parsed = parsed_or_none if parsed_or_none is not None else parse_email(stored.raw)  # raises the reason
        trail.parsed = parsed_fields(parsed)
        # SMTP always has an envelope sender ("<>" when null); "" means unknown (HTTP inbound without one).
        kind = classify(parsed, mail_from=stored.mail_from or None)
        if kind.kind is MessageKind.BOUNCE:
            # Recorded, never believed: anyone can send a bounce-shaped message to a reply address (or
            # over HTTP) naming anyone. Only a relay's own 5xx at delivery time suppresses an address.
            reported = f"; reports {', '.join(kind.failed)} (suppresses nobody)" if kind.failed else ""
            raise Bounce(kind.reason + reported)
        if kind.kind is MessageKind.AUTO_REPLY:
            raise AutoReply(kind.reason)
        trail.match = match = self._thread(stored, parsed)
        ticket = self._ticket_by_key(match.ticket_key)
        if ticket is None:
            raise Unthreaded(f"ticket {match.ticket_key} no longer exists")
        if stored.released_at is None:
            problem = check_sender(parsed, customer_email=ticket.customer.email, trusted_authserv_id=self._trusted)
            if problem is not None:
                raise problem
        extracted = extract(parsed, self._extractor)
        text = extracted.text.strip()
        if not text and not parsed.attachments:
            raise NoReplyText("no reply text found once quoted history and signature are removed")
        html = reply_html(html=parsed.html, text=text, rule=extracted.rule, inbound_id=stored.pk,
                          attachments=parsed.attachments)
        webhook = None
        if self._webhook_url:
            payload = webhook_payload(stored, parsed, ticket, extracted, match.signal.value, html)
            webhook = WebhookDraft(self._webhook_url, payload)
        parts = ReplyParts(html=html, signature=extracted.signature.strip("\n"), trimmed=extracted.quoted,
                           rule=extracted.rule)
        return Landing(
            pk=stored.pk, ticket_key=ticket.key, text=text, dedup_key=dedup_key(parsed, stored.raw),
            threaded_by=match.signal.value, now=now, parsed=trail.parsed, webhook=webhook, parts=parts,
        )

    def _bounce_target(self, stored: StoredInbound, parsed: ParsedEmail | None) -> int | None:
        """The outbox email whose verified bounce address the message was sent to (envelope first;
        over HTTP without one, To and Cc), or None."""
        addresses = stored.rcpt_to or (parsed.to_addrs if parsed is not None else ())
        for address in addresses:
            email_key = self._recipients.email_for_bounce(address)
            if email_key is not None:
                return email_key
        return None

    def _thread(self, stored: StoredInbound, parsed: ParsedEmail) -> ThreadMatch:
        # SMTP recipients were checked at RCPT; over HTTP without an envelope, To and Cc are looked at.
        addresses = stored.rcpt_to or parsed.to_addrs
        tickets: list[int] = []
        for address in addresses:
            try:
                tickets.append(self._recipients.ticket_for(address).key)
            except TokenError:
                continue
        sent = self._inbound.sent_message_ids([*parsed.in_reply_to, *parsed.references]) if not tickets else {}
        match = choose_thread(
            token_tickets=tickets, in_reply_to=parsed.in_reply_to, references=parsed.references, sent_ids=sent
        )
        if match is None:
            raise Unthreaded("no valid reply token, and In-Reply-To/References name no email of ours")
        return match


def preview(raw: bytes, extractor: Extractor, *, mail_from: str | None = None) -> dict[str, Any]:
    """What the pipeline would make of ``raw`` (with envelope sender ``mail_from`` if known), as
    JSON-ready data, touching nothing."""
    try:
        parsed = parse_email(raw)
    except MalformedMessage as exc:
        return {"ok": False, "error": str(exc)}
    reply = extract(parsed, extractor)
    kind = classify(parsed, mail_from=mail_from)
    return {
        "ok": True,
        "kind": kind.kind.value,
        "why": kind.reason,
        "message_id": parsed.message_id,
        "dedup_key": dedup_key(parsed, raw),
        "from": parsed.from_addr,
        "subject": parsed.subject,
        "in_reply_to": list(parsed.in_reply_to),
        "references": list(parsed.references),
        "attachments": [a.__dict__ for a in parsed.attachments],
        "reply": {"text": reply.text, "signature": reply.signature, "quoted": reply.quoted, "rule": reply.rule},
    }
