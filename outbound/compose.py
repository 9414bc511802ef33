"""Compose RFC 5322 messages from rendered emails. Pure: ids and dates are passed in.

Uses the stdlib's ``compat32`` MIME classes: about twice as fast as ``EmailMessage`` with
``policy.default`` (docs/benchmarks.md), and every header value is built here, so the
stricter policy's checks are done explicitly instead.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email import charset as _charset
from email.header import Header
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import compat32
from email.utils import format_datetime, formataddr, parseaddr

from outbound.render import RenderedEmail

__all__ = ["Envelope", "compose", "make_message_id", "one_line"]

_UTF8_QP = _charset.Charset("utf-8")
_UTF8_QP.header_encoding = _charset.QP
_UTF8_QP.body_encoding = _charset.QP
#: compat32 with CRLF line ends: what SMTP carries (bare LFs are refused by strict servers).
_WIRE = compat32.clone(linesep="\r\n")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def one_line(value: str) -> str:
    """``value`` with CR, LF and other control characters folded to single spaces."""
    return " ".join(_CONTROL.sub(" ", value).split())


def make_message_id(unique: str, domain: str) -> str:
    """``<unique@domain>`` (``unique`` comes from the caller: a uuid, say)."""
    return f"<{one_line(unique)}@{one_line(domain)}>"


@dataclass(frozen=True, kw_only=True)
class Envelope:
    """The addressing and threading headers of one email."""

    from_addr: str
    to_addr: str
    to_name: str
    reply_to: str
    message_id: str
    date: datetime
    in_reply_to: str | None = None
    references: Sequence[str] = ()


def _address(name: str, addr: str) -> str:
    name, addr = one_line(name), one_line(addr)
    if name and not name.isascii():
        return formataddr((str(Header(name, "utf-8")), addr))
    return formataddr((name, addr))


def _from(value: str) -> str:
    name, addr = parseaddr(one_line(value))
    return _address(name, addr or one_line(value))


def compose(email: RenderedEmail, envelope: Envelope) -> bytes:
    """The full source of ``email`` as ``multipart/alternative`` (text, then HTML)."""
    message = MIMEMultipart("alternative")
    subject = one_line(email.subject)
    message["Subject"] = Header(subject, "utf-8").encode() if not subject.isascii() else subject
    message["From"] = _from(envelope.from_addr)
    message["To"] = _address(envelope.to_name, envelope.to_addr)
    message["Reply-To"] = one_line(envelope.reply_to)
    message["Date"] = format_datetime(envelope.date)
    message["Message-ID"] = one_line(envelope.message_id)
    if envelope.in_reply_to:
        message["In-Reply-To"] = one_line(envelope.in_reply_to)
    if envelope.references:
        message["References"] = " ".join(one_line(r) for r in envelope.references)
    message["Auto-Submitted"] = "auto-generated"
    message["X-Auto-Response-Suppress"] = "All"
    message.attach(MIMEText(email.text, "plain", _UTF8_QP))  # type: ignore[arg-type]  # a Charset works
    message.attach(MIMEText(email.html, "html", _UTF8_QP))  # type: ignore[arg-type]
    return message.as_bytes(policy=_WIRE)
