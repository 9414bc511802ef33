"""Use an HTML part's structure to cut the quoted history, then turn the rest into text.

Mail clients mark quoted history in HTML far more reliably than in text: Gmail's
``div.gmail_quote``, Apple Mail's ``blockquote type="cite"``, Thunderbird's
``div.moz-cite-prefix``, Yahoo's ``yahoo_quoted`` and Outlook's reply-header markers
(``divRplyFwdMsg``, the ``border-top:solid #E1E1E1`` header div, ``OLK_SRC_BODY_SECTION``,
``appendonsend``).  The Outlook markers start the history, so everything from them to
the end of the document goes; the others wrap it, so only the element goes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html import escape
from typing import Final

import lxml.etree
import lxml.html

from inbound.extract.headers import forward_kept_marker
from inbound.extract.model import (
    RULE_BLOCKQUOTE_CITE_HTML,
    RULE_GMAIL_QUOTE_HTML,
    RULE_MOZ_CITE_PREFIX_HTML,
    RULE_OUTLOOK_REPLY_HTML,
    RULE_YAHOO_QUOTED_HTML,
)

__all__ = ["HtmlSplit", "html_to_text", "reply_part_html", "split_html"]


def _has_class(name: str) -> str:
    return f"contains(concat(' ', normalize-space(@class), ' '), ' {name} ')"


#: Outlook markers: history starts here and runs to the end of the document.
_OUTLOOK_XPATH: Final = lxml.etree.XPath(
    "//*[contains(@id, 'divRplyFwdMsg') or @id = 'appendonsend' or @id = 'x_appendonsend'"
    " or contains(@id, 'OLK_SRC_BODY_SECTION') or @id = 'stopSpelling'"
    " or (self::div and (contains(translate(@style, ' ', ''), 'border-top:solid#E1E1E1')"
    " or contains(translate(@style, ' ', ''), 'border-top:solid#B5C4DF')))]"
)
#: Wrapping markers, by the rule they report (checked in this order).
_WRAPPER_XPATHS: Final = (
    (RULE_GMAIL_QUOTE_HTML, lxml.etree.XPath(
        f"//*[{_has_class('gmail_quote')} or {_has_class('gmail_quote_container')}]")),
    (RULE_MOZ_CITE_PREFIX_HTML, lxml.etree.XPath(f"//*[{_has_class('moz-cite-prefix')}]")),
    (RULE_YAHOO_QUOTED_HTML, lxml.etree.XPath(
        f"//*[{_has_class('yahoo_quoted')} or contains(@id, 'yahoo_quoted')]")),
    (RULE_BLOCKQUOTE_CITE_HTML, lxml.etree.XPath("//blockquote[@type = 'cite']")),
)

_BLOCK_TAGS: Final = frozenset(
    "address article aside blockquote center dd div dl dt fieldset figure footer form h1 h2"
    " h3 h4 h5 h6 header hr li main nav ol p pre section table tbody thead tfoot tr ul".split()
)
_SKIP_TAGS: Final = frozenset({"head", "script", "style", "title", "meta", "link"})
_WS_RE: Final = re.compile(r"[ \t\r\n\f\u00a0\u200b]+")


@dataclass(frozen=True)
class HtmlSplit:
    """Text of what is left, text of what was cut, and the rule that cut it."""

    text: str
    quoted: str
    rule: str


def split_html(html: str) -> HtmlSplit | None:
    """Cut the history out of ``html`` by structure; None when no marker is present."""
    root = _parse(html)
    if root is None:
        return None
    removed, rule = _cut(root)
    if not rule:
        return None
    return HtmlSplit(html_to_text(root), "\n".join(r for r in removed if r.strip()), rule)


def reply_part_html(html: str) -> str | None:
    """The HTML of ``html``'s body once the history is cut by structure (the markup of the new
    part, unsanitised); None when no marker is present (or it is not HTML)."""
    root = _parse(html)
    if root is None:
        return None
    if not _cut(root)[1]:
        return None
    body = root.find("body")
    top = body if body is not None else root
    inner = [escape(top.text or "")] + [lxml.html.tostring(child, encoding="unicode") for child in top]
    return "".join(inner)


def _cut(root: lxml.html.HtmlElement) -> tuple[list[str], str]:
    """Remove the history from ``root`` in place: the text of what went, and the rule ("" for none)."""
    removed: list[str] = []
    rule = ""
    for node in _elements(_OUTLOOK_XPATH, root):
        if node.getparent() is not None:
            removed.append(_cut_to_end(node))
            rule = RULE_OUTLOOK_REPLY_HTML
            break
    for name, xpath in _WRAPPER_XPATHS:
        for node in _elements(xpath, root):
            if node.getparent() is None or not _still_attached(node, root):
                continue
            if name == RULE_GMAIL_QUOTE_HTML and _is_forward(node):
                continue
            if name == RULE_MOZ_CITE_PREFIX_HTML:
                nxt = node.getnext()
                if nxt is not None and nxt.tag == "blockquote":
                    removed.append(_drop(nxt))
            removed.append(_drop(node))
            rule = rule or name
    return removed, rule


def html_to_text(source: str | lxml.html.HtmlElement) -> str:
    """Render HTML (a string or a parsed element) as plain text, one line per block."""
    root = _parse(source) if isinstance(source, str) else source
    if root is None:
        return ""
    out: list[str] = []
    _render(root, out, pre=False)
    text = "".join(out)
    lines = [line.rstrip() for line in text.split("\n")]
    return "\n".join(lines).strip("\n")


def _elements(xpath: lxml.etree.XPath, root: lxml.html.HtmlElement) -> list[lxml.html.HtmlElement]:
    found = xpath(root)
    if not isinstance(found, list):
        return []
    return [x for x in found if isinstance(x, lxml.html.HtmlElement)]


def _parse(html: str) -> lxml.html.HtmlElement | None:
    if not html or not html.strip():
        return None
    try:
        return lxml.html.document_fromstring(html)
    except (lxml.etree.ParserError, ValueError):
        return None


def _still_attached(node: lxml.html.HtmlElement, root: lxml.html.HtmlElement) -> bool:
    top = node
    while top.getparent() is not None:
        top = top.getparent()
    return top is root


def _is_forward(node: lxml.html.HtmlElement) -> bool:
    head = _WS_RE.sub(" ", node.text_content()[:300]).strip()
    return forward_kept_marker(head) or forward_kept_marker(head.split(" From:")[0])


def _drop(node: lxml.html.HtmlElement) -> str:
    text = html_to_text(node)
    node.drop_tree()  # keeps node.tail in the document
    return text


def _cut_to_end(node: lxml.html.HtmlElement) -> str:
    """Remove ``node`` and everything after it in document order; return its text."""
    parts: list[str] = []
    current = node
    while True:
        parent = current.getparent()
        if parent is None:
            break
        for sib in list(current.itersiblings()):
            parts.append(html_to_text(sib))
            parent.remove(sib)
        current.tail = None
        current = parent
    parts.insert(0, html_to_text(node))
    parent = node.getparent()
    if parent is not None:
        parent.remove(node)
    return "\n".join(p for p in parts if p)


def _render(el: lxml.html.HtmlElement, out: list[str], *, pre: bool) -> None:
    tag = el.tag if isinstance(el.tag, str) else ""
    if tag in _SKIP_TAGS or not tag:
        _text(el.tail, out, pre)
        return
    if tag == "br":
        out.append("\n")
        _text(el.tail, out, pre)
        return
    block = tag in _BLOCK_TAGS
    if block:
        _newline(out)
        if tag == "p" and "MsoNormal" not in (el.get("class") or ""):
            _blank_line(out)
    in_pre = pre or tag == "pre"
    _text(el.text, out, in_pre)
    for child in el:
        _render(child, out, pre=in_pre)
    if block:
        _newline(out)
    if tag in ("td", "th"):
        out.append(" ")
    _text(el.tail, out, pre)


def _text(value: str | None, out: list[str], pre: bool) -> None:
    if not value:
        return
    if pre:
        out.append(value.replace("\u00a0", " "))
        return
    squashed = _WS_RE.sub(" ", value)
    if squashed == " " and (not out or out[-1].endswith(("\n", " "))):
        return
    if out and out[-1].endswith("\n"):
        squashed = squashed.lstrip(" ")
    if squashed:
        out.append(squashed)


def _newline(out: list[str]) -> None:
    if out and not out[-1].endswith("\n"):
        out.append("\n")


def _blank_line(out: list[str]) -> None:
    if out and not "".join(out[-2:]).endswith("\n\n"):
        out.append("\n")
