"""Teammate HTML made safe to put in an email (pure): a small allowlist through nh3 (ammonia)."""

from __future__ import annotations

import nh3
from markupsafe import Markup

__all__ = ["ALLOWED_TAGS", "safe_html"]

#: Formatting a teammate's reply may keep; everything else (scripts, styles, images, forms) goes.
ALLOWED_TAGS = frozenset({
    "a", "b", "blockquote", "br", "code", "div", "em", "i", "li", "ol", "p", "pre", "s", "span", "strong", "u", "ul",
})
_ATTRIBUTES = {"a": {"href"}}
_SCHEMES = {"http", "https", "mailto"}


def safe_html(html: str) -> Markup:
    """``html`` with only :data:`ALLOWED_TAGS`, links limited to http(s)/mailto, no attributes else."""
    cleaned = nh3.clean(
        html,
        tags=set(ALLOWED_TAGS),
        attributes=_ATTRIBUTES,
        url_schemes=_SCHEMES,
        link_rel="noopener noreferrer",
        strip_comments=True,
    )
    return Markup(cleaned)  # cleaned by nh3 just above
