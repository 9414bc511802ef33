"""The sanitised HTML of the new part of a reply (pure), with its inline images pointing at the API.

The help desk and the Messenger show it beside the text. It is the reply's own HTML with the
history cut by structure (:func:`inbound.extract.html.reply_part_html`) when the client marked
it; the whole HTML when the extractor cut nothing; else the extracted text, escaped. ``cid:``
images become the attachment URLs of the stored message (:func:`inbound.attachments.attachment_path`);
every other image source is dropped, so opening a reply never fetches anything from elsewhere.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from urllib.parse import unquote

import nh3

from inbound.attachments import attachment_path
from inbound.extract.html import reply_part_html
from inbound.extract.model import RULE_NO_QUOTE
from inbound.parse import Attachment

__all__ = ["ALLOWED_TAGS", "reply_html", "text_as_html"]

#: Markup a reply may keep: text formatting, lists, tables, links and images of its own attachments.
ALLOWED_TAGS = frozenset({
    "a", "b", "blockquote", "br", "code", "div", "em", "h1", "h2", "h3", "h4", "hr", "i", "img", "li", "ol", "p",
    "pre", "s", "span", "strong", "sub", "sup", "table", "tbody", "td", "th", "thead", "tr", "u", "ul",
})
_ATTRIBUTES = {"a": {"href"}, "img": {"src", "alt", "width", "height"}}
#: ``cid`` is let through nh3's scheme check only to be rewritten (or dropped) by the filter.
_SCHEMES = {"http", "https", "mailto", "cid"}


def text_as_html(text: str) -> str:
    """``text`` as escaped HTML: one paragraph per block, line breaks kept."""
    blocks = [b for b in text.replace("\r\n", "\n").split("\n\n") if b.strip()]
    return "".join("<p>" + escape(b.strip("\n")).replace("\n", "<br>") + "</p>" for b in blocks)


def reply_html(*, html: str | None, text: str, rule: str, inbound_id: int,
               attachments: Sequence[Attachment]) -> str:
    """The sanitised HTML of the new part of a reply (see the module docstring)."""
    source = reply_part_html(html) if html else None
    if source is None:
        source = html if html and rule == RULE_NO_QUOTE else text_as_html(text)
    by_cid = {
        a.content_id: attachment_path(inbound_id, n) for n, a in enumerate(attachments) if a.content_id
    }
    return _clean(source, by_cid)


def _clean(html: str, by_cid: Mapping[str, str]) -> str:
    ours = set(by_cid.values())

    def only_ours(tag: str, attribute: str, value: str) -> str | None:
        cid = value[4:].strip() if value[:4].lower() == "cid:" else None
        if tag == "img" and attribute == "src":
            if cid is not None:
                return by_cid.get(cid) or by_cid.get(unquote(cid).strip("<>"))
            return value if value in ours else None
        return None if cid is not None else value

    return nh3.clean(
        html, tags=set(ALLOWED_TAGS), attributes=_ATTRIBUTES, url_schemes=_SCHEMES, attribute_filter=only_ours,
        link_rel="noopener noreferrer", strip_comments=True,
    ).strip()
