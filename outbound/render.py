"""Render notification emails from ``templates/`` (Jinja2): a subject, a text and an HTML body."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

__all__ = ["Branding", "RenderedEmail", "Renderer", "find_templates", "pick_locale"]

#: The locale used when the customer's is unknown or has no templates.
FALLBACK_LOCALE = "en"


@dataclass(frozen=True, kw_only=True)
class Branding:
    """What the emails look like: product name, colour, logo and postal footer."""

    product_name: str = "Web2Chat"
    color: str = "#3b5bdb"
    logo_url: str | None = None
    footer_address: str = ""


@dataclass(frozen=True)
class RenderedEmail:
    """A rendered notification: subject (one line), plain text and HTML."""

    subject: str
    text: str
    html: str


def find_templates() -> Path:
    """The templates folder: packaged inside ``outbound`` when installed, beside it in a checkout."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "templates", here.parent / "templates"):
        if (candidate / "base.html").is_file():
            return candidate
    raise FileNotFoundError(f"email templates not found beside {here}")


def pick_locale(wanted: str, available: frozenset[str]) -> str:
    """``de-AT`` -> ``de-AT`` or ``de`` if available, else the fallback locale."""
    tag = wanted.replace("_", "-").strip()
    for candidate in (tag, tag.split("-")[0].lower()):
        if candidate in available:
            return candidate
    return FALLBACK_LOCALE


class Renderer:
    """Renders every email kind in every locale; undefined variables are errors."""

    def __init__(self, folder: Path, *, branding: Branding, marker: str, messenger_url: str) -> None:
        self._branding = branding
        self._marker = marker
        self._messenger_url = messenger_url
        loader = jinja2.FileSystemLoader(str(folder))
        common: dict[str, Any] = {"loader": loader, "undefined": jinja2.StrictUndefined, "keep_trailing_newline": False,
                                  "auto_reload": False}
        self._html = jinja2.Environment(autoescape=True, **common)
        self._text = jinja2.Environment(autoescape=False, **common)
        self._strings: Mapping[str, Mapping[str, Any]] = json.loads((folder / "strings.json").read_text("utf-8"))
        self._locales = frozenset(self._strings)
        self._kinds = frozenset(p.name for p in folder.iterdir() if p.is_dir())

    @property
    def kinds(self) -> frozenset[str]:
        """The email kinds that have templates."""
        return self._kinds

    @property
    def locales(self) -> frozenset[str]:
        """The locales that have strings (and templates)."""
        return self._locales

    def render(self, kind: str, locale: str, context: Mapping[str, Any]) -> RenderedEmail:
        """Render ``kind`` for ``locale`` (falling back to English) with ``context``."""
        if kind not in self._kinds:
            raise ValueError(f"no templates for email kind {kind!r}")
        loc = pick_locale(locale, self._locales)
        strings = self._strings[loc]
        state = context["ticket"].state
        values = {
            **context,
            "locale": loc,
            "brand": self._branding,
            "marker": self._marker,
            "messenger_url": context.get("messenger_url", self._messenger_url),
            "open_label": strings["open_label"],
            "footer_line": strings["footer_line"],
            "state_label": strings["states"].get(state, state),
            "states": strings["states"],
        }
        subject = " ".join(self._text.get_template(f"{kind}/{loc}/subject.txt").render(values).split())
        values["subject"] = subject
        text = self._text.get_template(f"{kind}/{loc}/body.txt").render(values)
        html = self._html.get_template(f"{kind}/{loc}/body.html").render(values)
        return RenderedEmail(subject=subject, text=text.strip() + "\n", html=html)
