"""Parse raw MIME into the gateway's own :class:`ParsedEmail` (flanker behind this interface).

Callers never see flanker: it can be swapped (it imports modules Python 3.13 removed) without
touching them. flanker gives the structure and the decoded headers; bodies are decoded here
from their raw bytes (transfer encoding, then :func:`inbound.charsets.decode_text`), because
flanker decodes a whole 8-bit message with one guessed charset. The bytes go to flanker as
Latin-1 text, which keeps every byte recoverable. Every failure becomes :class:`MalformedMessage`.
"""

from __future__ import annotations

import binascii
import contextlib
import io
import quopri
import re
from dataclasses import dataclass, field
from email.utils import getaddresses
from typing import Any

from gateway.errors import MalformedMessage
from inbound.charsets import decode_text, fix_8bit_header

__all__ = ["Attachment", "AttachmentContent", "ParsedEmail", "attachment_content", "parse_email", "parse_message_ids"]

_MSGID = re.compile(r"<([^<>\s]+)>")


@dataclass(frozen=True)
class Attachment:
    """An attachment (or inline image) of an inbound email."""

    filename: str | None
    content_type: str
    size: int
    inline: bool
    #: The part's ``Content-ID`` without its angle brackets (what ``cid:`` URLs name), or None.
    content_id: str | None = None


@dataclass(frozen=True)
class AttachmentContent:
    """One attachment's metadata and its decoded bytes (:func:`attachment_content`)."""

    attachment: Attachment
    data: bytes


@dataclass(frozen=True, kw_only=True)
class ParsedEmail:
    """What the inbound pipeline needs from a message; header names are lower-case."""

    message_id: str | None
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    from_addr: str | None
    from_name: str
    subject: str
    text: str | None
    html: str | None
    headers: tuple[tuple[str, str], ...] = ()
    attachments: tuple[Attachment, ...] = field(default=())
    content_type: str = "text/plain"
    #: Addresses in To and Cc (where an HTTP-delivered message's reply token may be).
    to_addrs: tuple[str, ...] = ()
    #: The ``message/delivery-status`` part of a DSN, as text.
    delivery_status: str | None = None

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or None."""
        wanted = name.lower()
        return next((v for k, v in self.headers if k == wanted), None)

    def header_values(self, name: str) -> tuple[str, ...]:
        """Every value of header ``name`` (case-insensitive), topmost first."""
        wanted = name.lower()
        return tuple(v for k, v in self.headers if k == wanted)


def parse_message_ids(value: str | None) -> tuple[str, ...]:
    """``"<a@x> <b@y>"`` -> ``("<a@x>", "<b@y>")`` (angle brackets kept, as we store them)."""
    if not value:
        return ()
    return tuple(f"<{m}>" for m in _MSGID.findall(value))


def _load_flanker() -> Any:
    # flanker's first import may rewrite its parser tables and print about it: keep that quiet.
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        from flanker import mime
        from flanker.addresslib import address
    return mime, address


_mime, _address = _load_flanker()


#: Where a part's header block ends: the first empty line.
_END_OF_HEADERS = re.compile(r"\r?\n\r?\n")
#: What base64 text may hold besides its alphabet and padding: line breaks and blanks.
_BASE64_BLANKS = re.compile(rb"[ \t\r\n]+")


_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
#: Every byte that is not base64's alphabet (deleted before counting what a base64 body decodes to).
_NOT_BASE64 = bytes(sorted(set(range(256)) - set(_ALPHABET)))
#: Every byte that is neither base64's alphabet nor its padding (deleted before decoding, one copy, no list).
_NOT_BASE64_OR_PAD = bytes(sorted(set(range(256)) - set(_ALPHABET + b"=")))


def _body_bytes(part: Any) -> bytes:
    """The part's body as it is written (transfer encoding not undone), from its own source."""
    source: str = part.to_string()
    if source[:1] in ("\r", "\n"):  # no header lines at all: the body starts after the empty line
        start = 2 if source.startswith("\r\n") else 1
    else:
        end = _END_OF_HEADERS.search(source)
        start = end.end() if end else len(source)
    return source[start:].encode("latin-1", "replace")


def _raw_body(part: Any, *, strict: bool = False) -> bytes:
    """The part's body bytes with the transfer encoding undone (``strict``: broken base64 raises
    :class:`MalformedMessage` instead of being decoded as well as it goes).

    Read from the part's own source (flanker's public ``to_string()``: for a part nobody changed,
    its original text), not through ``part.body``, which decodes with flanker's charset guess.
    """
    data = _body_bytes(part)
    encoding = (part.content_encoding.value or "").lower()
    if encoding == "base64":
        if strict:
            encoded = _BASE64_BLANKS.sub(b"", data)
            try:
                return binascii.a2b_base64(encoded + b"=" * (-len(encoded) % 4), strict_mode=True)
            except (binascii.Error, ValueError):
                raise MalformedMessage(
                    f"the {part.content_type.value} part is not valid base64; it cannot be read as text"
                ) from None
        with contextlib.suppress(binascii.Error, ValueError):
            return binascii.a2b_base64(data.translate(None, _NOT_BASE64_OR_PAD) + b"==")
        return data
    if encoding == "quoted-printable":
        return quopri.decodestring(data)
    return data




def _body_size(part: Any) -> int:
    """How many bytes the part's body decodes to, as ``len(_raw_body(part))``, but for base64 counted from the
    alphabet characters instead of decoded: an attachment of 15 MB is not decoded (and copied four times) only
    to be measured."""
    if (part.content_encoding.value or "").lower() != "base64":
        return len(_raw_body(part))
    data = _body_bytes(part)
    alphabet = len(data.translate(None, _NOT_BASE64))
    padding = data.find(b"=")
    if alphabet % 4 == 1 or (padding != -1 and data[padding:].strip(b"= \t\r\n")):  # unusual: decode it
        return len(_raw_body(part))
    return alphabet * 3 // 4


def _text(part: Any) -> str:
    """The decoded text of a text part; :class:`MalformedMessage` when its base64 is broken (its
    bytes would land on the ticket as garbage: the message is recorded as undecodable instead)."""
    return decode_text(_raw_body(part, strict=True), part.content_type.params.get("charset"))


def _header(message: Any, name: str) -> str:
    try:
        value = message.headers.get(name)
    except Exception:  # noqa: BLE001 - an undecodable header reads as absent
        return ""
    return fix_8bit_header(str(value)) if value is not None else ""


def _addresses(message: Any, name: str) -> list[tuple[str, str]]:
    """(display name, address) pairs: the stdlib splits the list (quoted commas), flanker checks each address."""
    raw = message.headers.getraw(name) or ""
    text = fix_8bit_header(raw.decode("latin-1") if isinstance(raw, bytes) else str(raw))
    found = []
    for display, candidate in getaddresses([text]):
        checked = _address.parse(candidate, addr_spec_only=True) if candidate else None
        if checked is not None:
            found.append((display, str(checked.address)))
        elif "@" in candidate:
            found.append((display, candidate))
    return found


def _display_name(message: Any, fallback: str) -> str:
    """The sender's decoded display name (flanker decodes RFC 2047 in the From header)."""
    decoded = getaddresses([_header(message, "From")])
    return decoded[0][0] if decoded and decoded[0][0] else fallback


def parse_email(raw: bytes) -> ParsedEmail:
    """Parse ``raw``; raise :class:`MalformedMessage` if it is not a usable email."""
    try:
        return _parse(raw)
    except MalformedMessage:
        raise
    except Exception as exc:  # noqa: BLE001 - flanker raises anything on bad MIME
        raise MalformedMessage(f"cannot parse message: {type(exc).__name__}: {exc}") from None


def attachment_content(raw: bytes, n: int) -> AttachmentContent | None:
    """Attachment ``n`` (0-based, in :attr:`ParsedEmail.attachments` order) of ``raw`` with its
    decoded bytes, or None when there is no such attachment; :class:`MalformedMessage` when
    ``raw`` cannot be parsed. Parses the message once and decodes only that part."""
    if n < 0:
        return None
    try:
        parts = _bodies(_message(raw))[3]
    except MalformedMessage:
        raise
    except Exception as exc:  # noqa: BLE001 - flanker raises anything on bad MIME
        raise MalformedMessage(f"cannot parse message: {type(exc).__name__}: {exc}") from None
    if n >= len(parts):
        return None
    data = _raw_body(parts[n])
    return AttachmentContent(_attachment(parts[n], data), data)


def _message(raw: bytes) -> Any:
    if not raw.strip():
        raise MalformedMessage("empty message")
    return _mime.from_string(raw.decode("latin-1"))


def _bodies(message: Any) -> tuple[str | None, str | None, str | None, list[Any]]:
    """The first text and HTML bodies, the delivery status, and the attachment parts in order."""
    text = html = delivery_status = None
    parts: list[Any] = []
    for part in message.walk(with_self=True, skip_enclosed=True):
        ctype = part.content_type
        if ctype.is_multipart() or ctype.is_message_container():
            continue
        disposition = (part.content_disposition[0] or "").lower()
        if ctype.value == "message/delivery-status" and delivery_status is None:
            delivery_status = _text(part)
            continue
        if disposition != "attachment" and not part.detected_file_name:
            if ctype.value == "text/plain" and text is None:
                text = _text(part)
                continue
            if ctype.value == "text/html" and html is None:
                html = _text(part)
                continue
        parts.append(part)
    return text, html, delivery_status, parts


def _attachment(part: Any, data: bytes | None = None) -> Attachment:
    disposition = (part.content_disposition[0] or "").lower()
    content_id = _part_header(part, "Content-ID").strip().strip("<>").strip() or None
    return Attachment(
        filename=part.detected_file_name or None,
        content_type=part.content_type.value,
        size=_body_size(part) if data is None else len(data),
        inline=disposition == "inline" or (disposition != "attachment" and content_id is not None),
        content_id=content_id,
    )


def _part_header(part: Any, name: str) -> str:
    try:
        value = part.headers.get(name)
    except Exception:  # noqa: BLE001 - an undecodable header reads as absent
        return ""
    return str(value) if value is not None else ""


def _parse(raw: bytes) -> ParsedEmail:
    message = _message(raw)
    headers = tuple((str(k).lower(), fix_8bit_header(str(v))) for k, v in message.headers.iteritems())
    if not any(k in ("from", "subject", "message-id", "to", "content-type") for k, _ in headers):
        raise MalformedMessage("no email headers found (From, To, Subject, Message-ID, Content-Type)")
    text, html, delivery_status, parts = _bodies(message)
    attachments = [_attachment(part) for part in parts]
    senders = _addresses(message, "From")
    to_addrs = tuple(a for name in ("To", "Cc") for _, a in _addresses(message, name))
    raw_id = _header(message, "Message-ID").strip()
    message_id = parse_message_ids(raw_id) or ((f"<{raw_id.strip('<>')[:240]}>",) if raw_id else ())
    return ParsedEmail(
        message_id=message_id[0] if message_id else None,
        in_reply_to=parse_message_ids(_header(message, "In-Reply-To")),
        references=parse_message_ids(_header(message, "References")),
        from_addr=senders[0][1].strip() if senders else None,
        from_name=_display_name(message, senders[0][0]) if senders else "",
        subject=_header(message, "Subject"),
        text=text,
        html=html,
        headers=headers,
        attachments=tuple(attachments),
        content_type=message.content_type.value,
        to_addrs=to_addrs,
        delivery_status=delivery_status,
    )
