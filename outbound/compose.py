"""Compose RFC 5322 messages from rendered emails. Pure: ids and dates are passed in.

Every header value is built here from a known shape, so the message is serialised directly
(``multipart/alternative``: text, then HTML, both UTF-8, CRLF line ends; a body goes ``7bit``
as it is when it is ASCII with short lines, quoted-printable otherwise) with the stdlib's
encoders: :mod:`email.header` for RFC 2047 encoded words, :func:`email.utils.formataddr` for
addresses and :func:`binascii.b2a_qp` (C) for bodies.
That is about ten times cheaper than building ``email.mime`` objects and flattening them
(docs/architecture.md); tests parse the result back with the stdlib's strict policy.
"""

from __future__ import annotations

import binascii
import functools
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.header import Header
from email.utils import format_datetime, formataddr, parseaddr

from outbound.render import RenderedEmail

__all__ = ["Envelope", "compose", "make_message_id", "one_line", "rfc5322_date"]

_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
#: Bidirectional controls (embeddings, overrides, isolates, marks): in a header they can make
#: a display name or Subject read differently from what it is ("Trojan Source"); dropped.
_BIDI = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
#: Longest header line we write before folding (RFC 5322 says lines SHOULD stay under 78).
MAX_HEADER_LINE = 76


def one_line(value: str) -> str:
    """``value`` with CR, LF and other control characters folded to single spaces, and
    bidirectional controls dropped."""
    if value.isprintable() and "  " not in value and value[:1] != " " and value[-1:] != " ":
        return value  # already one clean line (the common case)
    return " ".join(_CONTROL.sub(" ", _BIDI.sub("", value)).split())


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


def _text_header(value: str) -> str:
    """A free-text header value (Subject): folded, and RFC 2047-encoded when not ASCII."""
    value = one_line(value)
    # Text that looks like an RFC 2047 encoded word is encoded itself, so a client shows it as
    # written instead of decoding it (into a fake "Bcc:" line, say).
    literal_words = "=?" in value
    if value.isascii() and not literal_words and len(value) <= MAX_HEADER_LINE - len("Subject: "):
        return value
    charset = "us-ascii" if value.isascii() and not literal_words else "utf-8"
    return Header(value, charset, header_name="Subject").encode(linesep="\r\n", maxlinelen=MAX_HEADER_LINE)


def _address(name: str, addr: str) -> str:
    """``Name <addr>``: the name quoted when needed and RFC 2047-encoded when not ASCII (or when it
    looks like an encoded word itself, so that it is shown as written)."""
    name, addr = one_line(name), one_line(addr)
    if "=?" in name:
        return f"{Header(name, 'utf-8').encode()} <{addr}>"
    return formataddr((name, addr), charset="utf-8")


@functools.lru_cache(maxsize=16)
def _from(value: str) -> str:  # the gateway's one From address: parsed once, not per email
    name, addr = parseaddr(one_line(value))
    return _address(name, addr or one_line(value))


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def rfc5322_date(moment: datetime) -> str:
    """The ``Date`` header value, as :func:`email.utils.format_datetime` writes it; for a UTC
    moment (every email's) without its ``strftime`` round trip."""
    if moment.utcoffset() != timedelta(0):
        return format_datetime(moment)
    return (f"{_DAYS[moment.weekday()]}, {moment.day:02d} {_MONTHS[moment.month - 1]} {moment.year:04d} "
            f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d} +0000")


#: Longest body line (without its CRLF) sent as it is (RFC 5322 2.1.1).
MAX_BODY_LINE = 998


def _body(text: str, boundary: str) -> tuple[str, bytes]:
    """``text`` in UTF-8 with CRLF line ends and the transfer encoding it needs: ``7bit`` as it
    is when it is ASCII with no line over 998 characters (and cannot be mistaken for the
    boundary), as the stdlib's email package chooses; quoted-printable otherwise."""
    lf = text.replace("\r\n", "\n").replace("\r", "\n")
    if lf.isascii() and "\0" not in lf and boundary not in lf and max(map(len, lf.split("\n"))) <= MAX_BODY_LINE:
        return "7bit", lf.replace("\n", "\r\n").encode("ascii")
    crlf = lf.replace("\n", "\r\n").encode("utf-8")
    return "quoted-printable", binascii.b2a_qp(crlf, quotetabs=False, istext=True, header=False)


def _part(content_type: str, body: str, boundary: str) -> bytes:
    encoding, payload = _body(body, boundary)
    head = f"Content-Type: {content_type}; charset=\"utf-8\"\r\nContent-Transfer-Encoding: {encoding}\r\n\r\n"
    return head.encode("ascii") + payload


def compose(email: RenderedEmail, envelope: Envelope) -> bytes:
    """The full source of ``email`` as ``multipart/alternative`` (text, then HTML), CRLF ends."""
    # "=_" never occurs in quoted-printable text, and a 7bit body holding it goes quoted-printable.
    boundary = "=_w2c_" + hashlib.sha256(envelope.message_id.encode()).hexdigest()[:32]
    headers = [
        ("From", _from(envelope.from_addr)),
        ("To", _address(envelope.to_name, envelope.to_addr)),
        ("Reply-To", one_line(envelope.reply_to)),
        ("Subject", _text_header(email.subject)),
        ("Date", rfc5322_date(envelope.date)),
        ("Message-ID", one_line(envelope.message_id)),
    ]
    if envelope.in_reply_to:
        headers.append(("In-Reply-To", one_line(envelope.in_reply_to)))
    if envelope.references:
        headers.append(("References", "\r\n ".join(one_line(r) for r in envelope.references)))
    headers += [
        ("Auto-Submitted", "auto-generated"),
        ("X-Auto-Response-Suppress", "All"),
        ("MIME-Version", "1.0"),
        ("Content-Type", f'multipart/alternative; boundary="{boundary}"'),
    ]
    head = "".join(f"{name}: {value}\r\n" for name, value in headers).encode("ascii")
    sep = f"\r\n--{boundary}\r\n".encode("ascii")
    return b"".join((
        head,
        b"\r\nThis is a multipart message in MIME format.",
        sep, _part("text/plain", email.text, boundary),
        sep, _part("text/html", email.html, boundary),
        f"\r\n--{boundary}--\r\n".encode("ascii"),
    ))
