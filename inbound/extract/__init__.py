"""Reply extraction: what the customer wrote, without the quoted history or the signature.

``extract_reply(text, html=None)`` reads the plain-text body (and the HTML body when
there is one) and returns an :class:`ExtractedReply`.  The package is pure: no I/O, no
clock, no global state; it imports only the standard library and lxml.

Modules: ``headers`` (per-language tables of quote headers and delimiters), ``lines``
(the top-down cut over the text's lines), ``signature`` (sign-offs and client footers),
``html`` (structural cut on the HTML part), ``model`` (result type, rule names, marker).
"""

from __future__ import annotations

from inbound.extract.html import html_to_text, split_html
from inbound.extract.lines import split_quoted, unquoted_text
from inbound.extract.model import (
    REPLY_ABOVE_MARKER,
    REPLY_ABOVE_MARKERS,
    RULE_GATEWAY_MARKER,
    RULE_NO_QUOTE,
    ExtractedReply,
)
from inbound.extract.signature import split_signature

__all__ = ["REPLY_ABOVE_MARKER", "REPLY_ABOVE_MARKERS", "ExtractedReply", "extract_reply"]


def extract_reply(text: str, html: str | None = None) -> ExtractedReply:
    """Return the reply the customer typed in ``text`` (or ``html``), split from the history."""
    reply = _from_html(text, html) if html else None
    if reply is None:
        reply = _from_text(text or "")
    if reply.text:
        return reply
    # The rules left nothing: the customer's own unquoted text, if any, is the reply.
    source = text if text and text.strip() else (html_to_text(html) if html else "")
    return _fallback(source) or reply


def _fallback(text: str) -> ExtractedReply | None:
    normalised = text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text
    split = unquoted_text(normalised)
    body = _join(split.kept)
    if not body:
        return None
    return ExtractedReply(text=body, signature="", quoted=_join(split.quoted), rule=split.rule)


def _from_text(text: str) -> ExtractedReply:
    normalised = text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text
    split = split_quoted(normalised)
    body, signature = split_signature(split.kept)
    return ExtractedReply(
        text=_join(body),
        signature=_join_signature(signature),
        quoted=_join(split.quoted),
        rule=split.rule,
    )


def _from_html(text: str, html: str) -> ExtractedReply | None:
    cut = split_html(html)
    if cut is None:
        if text and text.strip():
            return None
        return _from_text(html_to_text(html))
    reply = _from_text(cut.text)
    if not reply.text and text and text.strip() and _from_text(text).text:
        return None  # the structure left nothing: trust the plain text instead
    rule = reply.rule if reply.rule == RULE_GATEWAY_MARKER else cut.rule
    quoted = "\n".join(q for q in (reply.quoted, cut.quoted) if q)
    return ExtractedReply(reply.text, reply.signature, quoted, rule or RULE_NO_QUOTE)


def _join(lines: list[str]) -> str:
    start, end = 0, len(lines)
    while start < end and not lines[start].strip():
        start += 1
    while end > start and not lines[end - 1].strip():
        end -= 1
    return "\n".join(lines[start:end]).rstrip()


def _join_signature(lines: list[str]) -> str:
    body = _join(lines)
    if not body:
        return ""
    return ("\n" + body) if lines and not lines[0].strip() else body
