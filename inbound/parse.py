"""Parse raw MIME into the gateway's own :class:`ParsedEmail` (flanker behind this interface).

Callers never see flanker: it can be swapped (it imports modules Python 3.13 removed) without
touching them. Every flanker failure becomes :class:`MalformedMessage`.
"""

from __future__ import annotations

import contextlib
import io
import re
from dataclasses import dataclass, field
from typing import Any

from gateway.errors import MalformedMessage

__all__ = ["Attachment", "ParsedEmail", "parse_email", "parse_message_ids"]

_MSGID = re.compile(r"<([^<>\s]+)>")


@dataclass(frozen=True)
class Attachment:
    """An attachment (or inline image) of an inbound email."""

    filename: str | None
    content_type: str
    size: int
    inline: bool


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

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or None."""
        wanted = name.lower()
        return next((v for k, v in self.headers if k == wanted), None)


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


def _decoded_body(part: Any) -> str | None:
    try:
        body = part.body
    except Exception:  # noqa: BLE001 - a bad charset or transfer encoding: decode by hand
        payload = part._container.body if hasattr(part, "_container") else b""
        if isinstance(payload, bytes):
            return payload.decode("utf-8", "replace")
        return None
    if isinstance(body, bytes):
        return body.decode("utf-8", "replace")
    return body if isinstance(body, str) else None


def parse_email(raw: bytes) -> ParsedEmail:
    """Parse ``raw``; raise :class:`MalformedMessage` if it is not a usable email."""
    try:
        message = _mime.from_string(raw)
        headers = tuple((str(k).lower(), str(v)) for k, v in message.headers.iteritems())
        text = html = None
        attachments: list[Attachment] = []
        for part in message.walk(with_self=True):
            ctype = part.content_type
            if ctype.is_multipart() or ctype.is_message_container():
                continue
            disposition = (part.content_disposition[0] or "").lower()
            if part.is_body() and disposition != "attachment":
                if ctype.value == "text/plain" and text is None:
                    text = _decoded_body(part)
                    continue
                if ctype.value == "text/html" and html is None:
                    html = _decoded_body(part)
                    continue
            if part.is_attachment() or part.is_inline() or not part.is_body():
                body = part.body
                size = len(body) if isinstance(body, (bytes, str)) else 0
                attachments.append(
                    Attachment(
                        filename=part.detected_file_name or None,
                        content_type=ctype.value,
                        size=size,
                        inline=disposition == "inline",
                    )
                )
        from_raw = message.headers.getraw("From") or ""
        sender = _address.parse(from_raw.decode("utf-8", "replace") if isinstance(from_raw, bytes) else from_raw)
        return ParsedEmail(
            message_id=f"<{message.message_id}>" if message.message_id else None,
            in_reply_to=parse_message_ids(message.headers.get("In-Reply-To")),
            references=parse_message_ids(message.headers.get("References")),
            from_addr=sender.address.lower() if sender is not None and hasattr(sender, "address") else None,
            from_name=getattr(sender, "display_name", "") or "" if sender is not None else "",
            subject=message.subject or "",
            text=text,
            html=html,
            headers=headers,
            attachments=tuple(attachments),
            content_type=message.content_type.value,
        )
    except MalformedMessage:
        raise
    except Exception as exc:  # noqa: BLE001 - flanker raises anything on bad MIME
        raise MalformedMessage(f"cannot parse message: {type(exc).__name__}: {exc}") from None
