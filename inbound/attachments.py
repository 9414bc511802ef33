"""Serving a reply's attachments from its stored raw message (pure): URLs, the served type, headers.

Nothing is copied out of the raw message: ``GET /v1/inbound/{id}/attachments/{n}`` parses it again
(:func:`inbound.parse.attachment_content`) and answers the n-th attachment's bytes. The type the
sender declared is believed only when the bytes agree (:func:`served_type`); everything is served
as a download (:func:`content_disposition`) with :data:`SAFE_HEADERS`, so a crafted "image" can
never run as a page of the API's origin.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from urllib.parse import quote

__all__ = [
    "FALLBACK_TYPE",
    "MAGIC",
    "SAFE_HEADERS",
    "attachment_path",
    "content_disposition",
    "served_type",
]

#: What bytes whose declared type cannot be confirmed are served as.
FALLBACK_TYPE = "application/octet-stream"

#: Headers on every attachment answer: no sniffing, and no script even if a browser renders it.
SAFE_HEADERS: Mapping[str, str] = MappingProxyType({
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; sandbox",
    "Cache-Control": "private, max-age=3600",
})

#: How much of the start of a text attachment is checked for binary bytes.
_TEXT_PROBE = 4096
#: Control bytes that do not occur in text (everything below space but tab, LF, FF, CR, and ESC).
_BINARY_BYTES = frozenset(range(32)) - {9, 10, 12, 13, 27}


def _starts(*prefixes: bytes) -> Callable[[bytes], bool]:
    return lambda data: data.startswith(prefixes)


def _webp(data: bytes) -> bool:
    return data[:4] == b"RIFF" and data[8:12] == b"WEBP"


def _text(data: bytes) -> bool:
    return not _BINARY_BYTES.intersection(data[:_TEXT_PROBE])


#: Declared types the gateway can confirm, each with the check its bytes must pass.
MAGIC: Mapping[str, Callable[[bytes], bool]] = MappingProxyType({
    "image/png": _starts(b"\x89PNG\r\n\x1a\n"),
    "image/jpeg": _starts(b"\xff\xd8\xff"),
    "image/gif": _starts(b"GIF87a", b"GIF89a"),
    "image/webp": _webp,
    "application/pdf": _starts(b"%PDF-"),
    "application/zip": _starts(b"PK\x03\x04", b"PK\x05\x06"),
    "text/plain": _text,
})
#: Other names senders use for the same types.
_ALIASES: Mapping[str, str] = MappingProxyType({
    "image/jpg": "image/jpeg",
    "image/pjpeg": "image/jpeg",
    "application/x-zip-compressed": "application/zip",
    "application/x-pdf": "application/pdf",
})


def served_type(declared: str, data: bytes) -> str:
    """The type to serve ``data`` as: ``declared`` when it is in :data:`MAGIC` and the bytes agree,
    else :data:`FALLBACK_TYPE` (a declared type the gateway cannot confirm is not repeated)."""
    wanted = declared.split(";")[0].strip().lower()
    wanted = _ALIASES.get(wanted, wanted)
    check = MAGIC.get(wanted)
    return wanted if check is not None and check(data) else FALLBACK_TYPE


def content_disposition(filename: str | None, *, fallback: str = "attachment") -> str:
    """``attachment; filename*=UTF-8''...`` (RFC 6266 / 8187), with an ASCII ``filename=`` beside it."""
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1].strip() or fallback
    name = "".join(c for c in name if c >= " " and c != "\x7f")[:200] or fallback
    ascii_name = "".join(c if " " <= c < "\x7f" and c not in '"%' else "_" for c in name)
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"


def attachment_path(inbound_id: int, n: int) -> str:
    """The API path of attachment ``n`` of stored message ``inbound_id`` (relative to the API)."""
    return f"/v1/inbound/{inbound_id}/attachments/{n}"
