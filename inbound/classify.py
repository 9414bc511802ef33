"""Is an inbound message a customer's reply, a bounce or an auto-reply? (pure)

Bounces and delivery status notifications (``multipart/report``, mailer-daemon senders, a null
return path) never land; the failed recipients they report are recorded, never believed (the
message could come from anyone). Auto-replies (RFC 3834
``Auto-Submitted``, vendor headers, ``Precedence``, out-of-office subjects) are recorded, never
land and are never answered, so no mail loop can start here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from inbound.parse import ParsedEmail

__all__ = ["Classification", "MessageKind", "classify", "failed_recipients"]


class MessageKind(StrEnum):
    """What an inbound message is."""

    REPLY = "reply"
    BOUNCE = "bounce"
    AUTO_REPLY = "auto_reply"


@dataclass(frozen=True)
class Classification:
    """The kind of a message, why, and (bounces) the addresses that failed for good."""

    kind: MessageKind
    reason: str = ""
    failed: tuple[str, ...] = ()


#: Local parts of the senders of bounces.
BOUNCE_SENDERS = frozenset({"mailer-daemon", "postmaster", "mail-daemon", "maildaemon"})
#: ``Precedence`` values that mark machine-sent mail.
MACHINE_PRECEDENCE = frozenset({"auto_reply", "bulk", "junk", "list"})
#: Vendor headers that mark an auto-reply, whatever their value.
AUTO_REPLY_HEADERS = ("x-autoreply", "x-autorespond", "x-autoresponder")
#: Out-of-office and automatic-reply subjects, in the languages customers write in.
OUT_OF_OFFICE_SUBJECTS = (
    r"out of (the )?office", r"automatic reply", r"auto[- ]?reply", r"auto[- ]?response", r"away from (the )?office",
    r"on vacation", r"on holiday", r"abwesenheitsnotiz", r"automatische antwort", r"nicht im büro",
    r"réponse automatique", r"absent(e)? du bureau", r"absence du bureau", r"respuesta automática",
    r"fuera de la oficina", r"risposta automatica", r"fuori (sede|ufficio)", r"automatisch antwoord",
    r"niet aanwezig", r"afwezigheidsmelding", r"resposta automática", r"ausente do escritório",
    r"fora do escritório", r"automatiskt svar", r"automatisk svar", r"frånvaro", r"fraværende",
    r"automatyczna odpowiedź", r"poza biurem", r"automaattinen vastaus", r"automatická odpověď",
    r"автоматический ответ", r"вне офиса", r"otomatik yanıt", r"自動応答", r"自動返信", r"不在通知",
    r"自动回复", r"自動回覆", r"자동 응답",
)
_OUT_OF_OFFICE = re.compile("|".join(OUT_OF_OFFICE_SUBJECTS), re.IGNORECASE)
_FIELD = re.compile(r"^([A-Za-z-]+)\s*:\s*(.*)$")


def _local_part(address: str | None) -> str:
    return (address or "").rpartition("@")[0].lower() if "@" in (address or "") else (address or "").lower()


def failed_recipients(parsed: ParsedEmail) -> tuple[str, ...]:
    """Addresses a bounce reports as failed for good: ``Action: failed`` / ``Status: 5.x.x`` blocks of
    its delivery-status part, or Exim's ``X-Failed-Recipients``."""
    found: list[str] = []
    for block in re.split(r"\r?\n\s*\r?\n", parsed.delivery_status or ""):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            match = _FIELD.match(line.strip())
            if match:
                fields.setdefault(match.group(1).lower(), match.group(2).strip())
        recipient = fields.get("final-recipient") or fields.get("original-recipient") or ""
        failed = fields.get("action", "").lower() == "failed" or fields.get("status", "").startswith("5")
        address = recipient.partition(";")[2].strip().strip("<>") if ";" in recipient else recipient.strip("<>")
        if failed and "@" in address:
            found.append(address)
    for value in parsed.header_values("x-failed-recipients"):
        found.extend(a.strip().strip("<>") for a in value.split(",") if "@" in a)
    return tuple(dict.fromkeys(a.lower() for a in found))


def classify(parsed: ParsedEmail, *, mail_from: str | None) -> Classification:
    """Classify ``parsed``; ``mail_from`` is the envelope sender (None when unknown, e.g. HTTP inbound)."""
    report = parsed.content_type == "multipart/report" or parsed.delivery_status is not None
    exim = parsed.header("x-failed-recipients") is not None
    if report or exim or _local_part(parsed.from_addr) in BOUNCE_SENDERS:
        why = ("delivery status notification" if report
               else "X-Failed-Recipients header" if exim else f"sent by {parsed.from_addr}")
        return Classification(MessageKind.BOUNCE, why, failed_recipients(parsed))
    auto_submitted = (parsed.header("auto-submitted") or "").split(";")[0].strip().lower()
    if auto_submitted and auto_submitted != "no":
        return Classification(MessageKind.AUTO_REPLY, f"Auto-Submitted: {auto_submitted}")
    for name in AUTO_REPLY_HEADERS:
        if parsed.header(name) is not None:
            return Classification(MessageKind.AUTO_REPLY, f"{name} header")
    precedence = (parsed.header("precedence") or "").strip().lower()
    if precedence in MACHINE_PRECEDENCE:
        return Classification(MessageKind.AUTO_REPLY, f"Precedence: {precedence}")
    if _OUT_OF_OFFICE.search(parsed.subject or ""):
        return Classification(MessageKind.AUTO_REPLY, f"out-of-office subject: {parsed.subject[:80]!r}")
    if mail_from is not None and mail_from.strip() in ("", "<>"):
        return Classification(MessageKind.BOUNCE, "null return path", failed_recipients(parsed))
    return Classification(MessageKind.REPLY)
