"""What a bounce says (pure): hard or soft failure, complaint, delay, or no bounce at all, and for whom.

Read from the content alone (mail over HTTP has no envelope), in this order, the first that
answers wins:

1. an ARF feedback report (RFC 5965: ``multipart/report; report-type=feedback-report``, or a
   ``message/feedback-report`` part): a **complaint**, for its ``Original-Rcpt-To`` if it names one;
2. an RFC 3464 delivery status notification (``message/delivery-status``): per recipient its
   ``Action``, ``Status`` and ``Diagnostic-Code`` (``delayed`` is a delay, not a failure);
3. Exim's ``X-Failed-Recipients`` header, with the status and reason from the text;
4. GNU Mailman's bounce detectors (``flufl.bounce``: qmail, Postfix without DSN, Exchange, Yahoo,
   AOL, GroupWise, and generic patterns) for the failed addresses, temporary or permanent;
5. the human-readable text: an address on a line (or the line after) that says why delivery
   failed, with the phrases MTAs write ("user unknown", "mailbox full", ...).

Each failed recipient is **hard** (the mailbox or domain does not exist: it will never work) or
**soft** (full, too large, blocked, deferred: it may work later), from its enhanced status code
when there is one (RFC 3463), else the SMTP reply code, else the words. Line ends are normalised
first (bounces with bare CR line ends are common). Nothing here believes anything: whether a
report counts against an address is the delivery loop's decision (``outbound.bounces``).
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from email import message_from_bytes
from email.message import Message
from email.policy import compat32
from enum import StrEnum

__all__ = ["BounceKind", "BounceReport", "FailedRecipient", "kind_for_status", "read_bounce"]


class BounceKind(StrEnum):
    """What a message reports about delivery."""

    HARD = "hard"  # the address will never work: mailbox or domain does not exist
    SOFT = "soft"  # it may work later: full, too large, blocked, deferred
    COMPLAINT = "complaint"  # the recipient marked the email as spam (ARF)
    DELAYED = "delayed"  # still trying: not a failure
    NOT_A_BOUNCE = "not_a_bounce"  # an auto-reply, a human, anything that reports no failure


@dataclass(frozen=True)
class FailedRecipient:
    """One recipient a report names, with how it failed."""

    address: str
    kind: BounceKind
    status: str = ""  # enhanced status code ("5.1.1") or SMTP reply code ("550"), when known
    diagnostic: str = ""  # the remote server's words, one line


@dataclass(frozen=True)
class BounceReport:
    """The whole report: its overall kind (the worst of its recipients) and each recipient."""

    kind: BounceKind
    recipients: tuple[FailedRecipient, ...] = ()
    how: str = ""  # which reading recognised it ("dsn", "arf", "x-failed-recipients", ...)

    def for_address(self, address: str) -> FailedRecipient | None:
        """What the report says of ``address`` (case-insensitive), or None if it does not name it."""
        wanted = address.strip().strip("<>").casefold()
        return next((r for r in self.recipients if r.address.casefold() == wanted), None)


_ENHANCED = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_BASIC = re.compile(r"(?<![\d.])([45]\d\d)(?![\d.])")
_ADDRESS = re.compile(r"<?([A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)>?")
#: Words that say an address will never work.
HARD_PHRASES = (
    "user unknown", "unknown user", "no such user", "no such recipient", "no such mailbox", "does not exist",
    "doesn't exist", "not exist", "mailbox unavailable", "mailbox not found", "mailbox is unavailable",
    "address rejected", "recipient rejected", "invalid recipient", "invalid address", "unknown recipient",
    "recipient not found", "no mailbox", "account has been disabled", "account is disabled",
    "account disabled", "unrouteable address", "unroutable address", "host not found", "domain not found",
    "name or service not known", "no mx", "address not found", "not our customer", "undeliverable address",
    "user not found", "account that you tried to reach does not exist", "user doesn't have", "user does not have",
)
#: Words that say it may work later.
SOFT_PHRASES = (
    "mailbox full", "mailbox is full", "over quota", "quota exceeded", "exceeded storage",
    "insufficient storage", "message too large", "message size exceeds", "too big", "temporarily",
    "try again later", "deferred", "greylist", "rate limit", "too many", "blocked", "spam", "policy",
    "timed out", "connection refused", "delivery time expired", "retry time",
)
#: Words of the human-readable part that say a message could not be delivered.
FAILURE_PHRASES = (*HARD_PHRASES, *SOFT_PHRASES, "could not be delivered", "delivery failed",
                   "undeliverable", "permanent error", "failed permanently", "unable to deliver",
                   "delivery has failed", "message not delivered", "returned to sender")
#: Statuses of the 5.x.x class that are not about the address itself (it may work later).
_SOFT_PERMANENT = (
    "5.2.2", "5.2.3", "5.3.4", "5.4.6", "5.4.7", "5.5.3", "5.7.0", "5.7.1", "5.7.9", "5.7.23", "5.7.26",
    "5.7.27", "5.7.28", "5.7.350", "5.7.509", "5.7.708",
)


def kind_for_status(status: str, diagnostic: str = "") -> BounceKind:
    """HARD or SOFT for an enhanced status (``5.1.1``) or SMTP code (``550``), with the diagnostic's
    words deciding when the code alone does not (``5.0.0``, ``550``)."""
    words = diagnostic.casefold()
    if status.startswith("4"):
        return BounceKind.SOFT
    if status in _SOFT_PERMANENT or status.startswith("5.7.") or status.startswith("5.2.2"):
        return BounceKind.SOFT
    if re.fullmatch(r"5\.[14]\.\d+", status) or status in ("5.2.1",):
        return BounceKind.HARD
    if any(p in words for p in SOFT_PHRASES) and not any(p in words for p in HARD_PHRASES):
        return BounceKind.SOFT
    if any(p in words for p in HARD_PHRASES):
        return BounceKind.HARD
    if status in ("552", "554", "450", "451", "452", "421"):
        return BounceKind.SOFT
    return BounceKind.HARD if status.startswith("5") else BounceKind.SOFT


def _status_in(text: str) -> str:
    enhanced = _ENHANCED.search(text)
    if enhanced:
        return enhanced.group(0)
    basic = _BASIC.search(text)
    return basic.group(1) if basic else ""


def _one_line(text: str, limit: int = 300) -> str:
    return " ".join(text.split())[:limit]


def _normalised(raw: bytes) -> bytes:
    return raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n")


def _fields(block: str) -> dict[str, str]:
    """``Name: value`` lines of a header block (continuation lines joined), lower-case names."""
    fields: dict[str, str] = {}
    name = ""
    for line in block.split("\n"):
        if line[:1] in (" ", "\t") and name:
            fields[name] += " " + line.strip()
            continue
        key, colon, value = line.partition(":")
        if colon and key.strip() and " " not in key.strip():
            name = key.strip().lower()
            fields.setdefault(name, value.strip())
    return fields


def _address_of(field: str) -> str:
    """The address of ``rfc822; <a@b>`` (or of a bare address)."""
    value = field.partition(";")[2] if ";" in field else field
    match = _ADDRESS.search(value)
    return match.group(1) if match else ""


def _text_of(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if isinstance(payload, bytes):
        return payload.decode(part.get_content_charset() or "latin-1", "replace")
    if isinstance(payload, str):
        return payload
    inner = part.get_payload()
    if isinstance(inner, list):  # message/* parts parsed into header blocks
        return "\n\n".join(str(m) for m in inner)
    return str(inner or "")


def _parts(message: Message, ctype: str) -> list[Message]:
    return [p for p in message.walk() if p.get_content_type() == ctype]


def _arf(message: Message) -> BounceReport | None:
    report_type = message.get_param("report-type")
    report = message.get_content_type() == "multipart/report" and str(report_type or "").lower() == "feedback-report"
    parts = _parts(message, "message/feedback-report")
    if not report and not parts:
        return None
    fields = _fields(_text_of(parts[0])) if parts else {}
    address = _address_of(fields.get("original-rcpt-to", ""))
    recipients = (FailedRecipient(address, BounceKind.COMPLAINT, "", _one_line(fields.get("feedback-type", ""))),)
    return BounceReport(BounceKind.COMPLAINT, recipients if address else (), "arf")


def _dsn(message: Message) -> BounceReport | None:
    parts = _parts(message, "message/delivery-status")
    if not parts:
        return None
    recipients: list[FailedRecipient] = []
    delayed = False
    for part in parts:
        text = _text_of(part).replace("\r\n", "\n").replace("\r", "\n")
        for block in re.split(r"\n\s*\n", text):
            fields = _fields(block)
            address = _address_of(fields.get("final-recipient", "") or fields.get("original-recipient", ""))
            action = fields.get("action", "").lower()
            if not address or not action:
                continue
            if action.startswith("delayed"):
                delayed = True
                continue
            if not action.startswith(("failed", "error")):
                continue  # delivered, relayed, expanded
            diagnostic = fields.get("diagnostic-code", "").partition(";")[2].strip() or fields.get(
                "diagnostic-code", "")
            status = fields.get("status", "").split()[0] if fields.get("status") else _status_in(diagnostic)
            recipients.append(FailedRecipient(address, kind_for_status(status, diagnostic), status,
                                              _one_line(diagnostic)))
    if recipients:
        return BounceReport(_worst(recipients), tuple(recipients), "dsn")
    if delayed:
        return BounceReport(BounceKind.DELAYED, (), "dsn")
    return None


def _worst(recipients: list[FailedRecipient]) -> BounceKind:
    return BounceKind.HARD if any(r.kind is BounceKind.HARD for r in recipients) else recipients[0].kind


def _body_text(message: Message) -> str:
    """The human-readable text: every text part outside an attached original message."""
    texts: list[str] = []

    def visit(part: Message) -> None:
        if part.get_content_type() in ("message/rfc822", "text/rfc822-headers"):
            return
        if part.is_multipart():
            for sub in part.get_payload():
                if isinstance(sub, Message):
                    visit(sub)
            return
        if part.get_content_maintype() == "text":
            text = _text_of(part)
            if part.get_content_subtype() == "html":
                text = re.sub(r"<[^>]+>", " ", text)
            texts.append(text)

    visit(message)
    return "\n".join(texts).replace("\r\n", "\n").replace("\r", "\n")


def _reason_near(text: str, address: str) -> str:
    """The line naming ``address`` and the one after it: where MTAs put the reason."""
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if address.casefold() in line.casefold():
            return _one_line(" ".join(lines[i:i + 3]))
    return ""


def _from_text(addresses: list[str], text: str, how: str, *, temporary: bool = False) -> BounceReport | None:
    recipients = []
    for address in dict.fromkeys(a for a in addresses if a):
        reason = _reason_near(text, address) or _one_line(text[:300])
        status = _status_in(reason)
        kind = BounceKind.SOFT if temporary else kind_for_status(status, reason)
        recipients.append(FailedRecipient(address, kind, status, reason))
    if not recipients:
        return None
    return BounceReport(_worst(recipients), tuple(recipients), how)


def _exim(message: Message, text: str) -> BounceReport | None:
    header = message.get_all("X-Failed-Recipients") or []
    addresses = [_address_of(a) for value in header for a in str(value).split(",")]
    return _from_text(addresses, text, "x-failed-recipients")


def _mailman(message: Message, text: str) -> BounceReport | None:
    try:
        from flufl.bounce import all_failures
    except ImportError:  # pragma: no cover - a declared dependency
        return None
    try:
        temporary, permanent = all_failures(message)
    except Exception:  # noqa: BLE001 - a detector choking on odd input is no report
        return None
    decoded = {a.decode("ascii", "replace") for a in permanent}
    report = _from_text(sorted(decoded), text, "flufl.bounce")
    if report is not None:
        return report
    delayed = sorted({a.decode("ascii", "replace") for a in temporary})
    return _from_text(delayed, text, "flufl.bounce", temporary=True)


def _plain_words(message: Message, text: str) -> BounceReport | None:
    """An address on a line that (with the next one) says why delivery failed."""
    folded = text.casefold()
    if not any(p in folded for p in FAILURE_PHRASES):
        return None
    own = {a.casefold() for a in _ADDRESS.findall(str(message.get("From", "")))}
    lines = text.split("\n")
    found: list[str] = []
    for i, line in enumerate(lines):
        window = " ".join(lines[i:i + 2]).casefold()
        if not any(p in window for p in FAILURE_PHRASES):
            continue
        for address in _ADDRESS.findall(line):
            if address.casefold() not in own and not address.casefold().startswith(("mailer-daemon@", "postmaster@")):
                found.append(address)
    return _from_text(found, text, "text")


def read_bounce(raw: bytes) -> BounceReport:
    """What ``raw`` reports about delivery (never raises: unreadable input reports no bounce)."""
    try:
        message = message_from_bytes(_normalised(raw), policy=compat32)
    except Exception:  # noqa: BLE001 - unreadable is not a bounce
        return BounceReport(BounceKind.NOT_A_BOUNCE)
    for reading in (_arf, _dsn):
        with contextlib.suppress(Exception):
            found = reading(message)
            if found is not None:
                return found
    text = _body_text(message)
    for reading_text in (_exim, _mailman, _plain_words):
        with contextlib.suppress(Exception):
            found = reading_text(message, text)
            if found is not None:
                return found
    return BounceReport(BounceKind.NOT_A_BOUNCE)
