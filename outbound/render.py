"""Render notification emails (Jinja2 with ``jinja2.ext.i18n``, Babel catalogs): a subject, a text and an HTML body.

One template per email kind (``templates/<kind>/subject.txt``, ``body.txt``, ``body.html``); every
sentence in them is a gettext message, translated in ``templates/locale/<locale>/LC_MESSAGES/messages.po``
and read from the compiled ``messages.mo`` beside it (``bash scripts/catalogs`` extracts, updates and
compiles them). English is the source language: it has no catalog.

Speed: the catalogs are read once, when the :class:`Renderer` is built, and each locale gets its
own pair of Jinja environments (text, HTML) with that locale's translations installed, so a render
does no catalog look-up beyond gettext's own dictionary and compiles no template after the first.
"""

from __future__ import annotations

import gettext
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, tzinfo
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jinja2
from babel import Locale, UnknownLocaleError
from babel.core import get_global
from babel.dates import format_date, format_time, get_datetime_format
from babel.support import Translations
from markupsafe import Markup

__all__ = [
    "DEFAULT_LOCALE",
    "KINDS",
    "SOURCE_LOCALE",
    "STATE_LABELS",
    "Branding",
    "RenderedEmail",
    "Renderer",
    "available_locales",
    "find_templates",
    "negotiate_locale",
]

#: The locale used when the customer's is unknown or has no catalog (``GATEWAY_DEFAULT_LOCALE``).
DEFAULT_LOCALE = "en"
#: The language the templates are written in: it needs no catalog.
SOURCE_LOCALE = "en"
#: The email kinds, one template set each.
KINDS = ("state_changed", "teammate_reply", "ticket_created")
#: The catalogs' domain and the folder (inside the templates) that holds them.
DOMAIN, CATALOGS = "messages", "locale"


def N_(message: str) -> str:
    """Mark ``message`` for extraction; it is translated where it is used."""
    return message


#: What the ticket pill and the emails call each state (translated per locale when the renderer is built).
STATE_LABELS: Mapping[str, str] = {
    "submitted": N_("Submitted"),
    "in_progress": N_("In progress"),
    "waiting_on_customer": N_("Waiting on you"),
    "resolved": N_("Resolved"),
    "closed": N_("Closed"),
}


@dataclass(frozen=True, kw_only=True)
class Branding:
    """What the emails look like: product name, colour, logo and postal footer."""

    product_name: str = "Web2Chat"
    color: str = "#3b5bdb"
    logo_url: str | None = None
    footer_address: str = ""


@dataclass(frozen=True)
class RenderedEmail:
    """A rendered notification: subject (one line), plain text, HTML, and the locale it is in."""

    subject: str
    text: str
    html: str
    locale: str = SOURCE_LOCALE


def find_templates() -> Path:
    """The templates folder: packaged inside ``outbound`` when installed, beside it in a checkout."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "templates", here.parent / "templates"):
        if (candidate / "base.html").is_file():
            return candidate
    raise FileNotFoundError(f"email templates not found beside {here}")


def available_locales(folder: Path) -> frozenset[str]:
    """The source locale and every locale with a compiled catalog under ``folder``."""
    catalogs = folder / CATALOGS
    found = {p.parent.parent.name for p in catalogs.glob(f"*/LC_MESSAGES/{DOMAIN}.mo")} if catalogs.is_dir() else set()
    return frozenset(found | {SOURCE_LOCALE})


@lru_cache(maxsize=512)
def negotiate_locale(wanted: str, available: frozenset[str], default: str = DEFAULT_LOCALE) -> str:
    """The available locale closest to ``wanted`` (a BCP 47 tag or a POSIX name), else ``default``.

    ``de-AT`` -> ``de``; ``pt-BR``, ``pt_BR`` and ``pt`` -> ``pt_BR``; ``zh-CN``, ``zh-Hans`` and
    ``zh`` -> ``zh_Hans`` (the script is inferred from CLDR's likely subtags, so ``zh-TW``, written
    in Traditional characters, does not get ``zh_Hans``); unknown or malformed -> ``default``.
    """
    tag = wanted.strip().replace("-", "_")
    if not tag:
        return default
    try:
        parsed = Locale.parse(tag)
    except (ValueError, UnknownLocaleError):
        return default
    language, territory = parsed.language, parsed.territory
    script = parsed.script or _likely_script(language, territory)
    candidates = [
        f"{language}_{script}_{territory}", f"{language}_{territory}", f"{language}_{script}", language,
    ]
    for candidate in candidates:
        if candidate in available:
            return candidate
    for name in sorted(available):  # same language (and script), another region: pt_PT -> pt_BR
        other = Locale.parse(name)
        if other.language == language and (other.script or _likely_script(language, other.territory)) == script:
            return name
    return default


def _likely_script(language: str, territory: str | None) -> str | None:
    likely: Mapping[str, str] = get_global("likely_subtags")
    full = likely.get(f"{language}_{territory}") if territory else None
    full = full or likely.get(language)
    if not full:
        return None
    parts = full.split("_")
    return parts[1] if len(parts) > 2 else None


@lru_cache(maxsize=256)
def _zone(name: str | None) -> tzinfo:
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return ZoneInfo("UTC")


@dataclass(frozen=True)
class _Speaker:
    """One locale's environments and what every render in it needs."""

    locale: str
    text: jinja2.Environment
    html: jinja2.Environment
    constants: Mapping[str, Any]


class Renderer:
    """Renders every email kind in every locale; undefined variables are errors."""

    def __init__(
        self,
        folder: Path,
        *,
        branding: Branding,
        markers: Mapping[str, str],
        messenger_url: str,
        default_locale: str = DEFAULT_LOCALE,
    ) -> None:
        """``markers`` is the reply-above line per locale (the inbound extractor's table); a locale
        without one gets the default locale's, or the source locale's."""
        self._branding = branding
        self._messenger_url = messenger_url
        self._loader = jinja2.FileSystemLoader(str(folder))
        self._locales = available_locales(folder)
        if default_locale not in self._locales:
            raise ValueError(f"default locale {default_locale!r} has no catalog; known: {sorted(self._locales)}")
        self._default = default_locale
        self._kinds = frozenset(k for k in KINDS if (folder / k / "body.html").is_file())
        fallback = markers.get(default_locale) or markers[SOURCE_LOCALE]
        self._speakers = {
            loc: self._speaker(folder, loc, markers.get(loc, fallback)) for loc in sorted(self._locales)
        }

    @property
    def kinds(self) -> frozenset[str]:
        """The email kinds that have templates."""
        return self._kinds

    @property
    def locales(self) -> frozenset[str]:
        """The locales emails can be written in (the source locale and every compiled catalog)."""
        return self._locales

    @property
    def default_locale(self) -> str:
        """The locale of customers whose own is unknown or not available."""
        return self._default

    def negotiate(self, wanted: str) -> str:
        """The locale an email for a customer with ``wanted`` is written in."""
        return negotiate_locale(wanted, self._locales, self._default)

    def render(self, kind: str, locale: str, context: Mapping[str, Any]) -> RenderedEmail:
        """Render ``kind`` in the locale negotiated from ``locale`` with ``context``."""
        if kind not in self._kinds:
            raise ValueError(f"no templates for email kind {kind!r}")
        speaker = self._speakers[self.negotiate(locale)]
        customer = context.get("customer")
        values = {
            **speaker.constants,
            **context,
            "tz": _zone(getattr(customer, "time_zone", None)),
            "messenger_url": context.get("messenger_url", self._messenger_url),
        }
        values["state_label"] = values["states"].get(context["ticket"].state, context["ticket"].state)
        subject = " ".join(speaker.text.get_template(f"{kind}/subject.txt").render(values).split())
        values["subject"] = subject
        text = speaker.text.get_template(f"{kind}/body.txt").render(values)
        html = speaker.html.get_template(f"{kind}/body.html").render(values)
        return RenderedEmail(subject=subject, text=text.strip() + "\n", html=html, locale=speaker.locale)

    def _speaker(self, folder: Path, loc: str, marker: str) -> _Speaker:
        translations: gettext.NullTranslations
        if loc == SOURCE_LOCALE:
            translations = gettext.NullTranslations()
        else:
            translations = Translations.load(str(folder / CATALOGS), [loc], DOMAIN)
        babel_locale = Locale.parse(loc)
        when = _date_formatter(babel_locale)
        envs = []
        for autoescape in (False, True):
            env = jinja2.Environment(
                loader=self._loader, undefined=jinja2.StrictUndefined, autoescape=autoescape,
                keep_trailing_newline=False, auto_reload=False, extensions=["jinja2.ext.i18n"],
            )
            env.policies["ext.i18n.trimmed"] = True
            env.newstyle_gettext = True  # type: ignore[attr-defined]
            env.globals.update(_gettext_callables(translations, autoescape=autoescape))
            env.filters["when"] = when
            envs.append(env)
        rtl = babel_locale.text_direction == "rtl"
        constants = {
            "locale": loc,
            "lang": loc.replace("_", "-"),
            "dir": "rtl" if rtl else "ltr",
            "start": "right" if rtl else "left",
            "end": "left" if rtl else "right",
            "brand": self._branding,
            "marker": marker,
            "states": {state: translations.gettext(label) for state, label in STATE_LABELS.items()},
        }
        return _Speaker(loc, envs[0], envs[1], constants)


def _gettext_callables(translations: gettext.NullTranslations, *, autoescape: bool) -> dict[str, Any]:
    """``_``, ``gettext`` and ``ngettext`` for one environment, as ``jinja2.ext.i18n``'s new style
    expects them (keyword arguments formatted in, escaped when the environment autoescapes).

    ``Environment.install_gettext_translations(newstyle=True)`` would give the same results through
    context-passing wrappers that look at the template's autoescape setting on every call; each of
    our environments has one fixed setting, so plain functions do, at a third of the cost per message.
    """
    wrap: Any = Markup if autoescape else str
    translate, translate_plural = translations.gettext, translations.ngettext

    def gettext_(message: str, /, **variables: Any) -> str:
        return wrap(translate(message)) % variables  # type: ignore[no-any-return]

    def ngettext_(singular: str, plural: str, num: int, /, **variables: Any) -> str:
        variables.setdefault("num", num)
        return wrap(translate_plural(singular, plural, num)) % variables  # type: ignore[no-any-return]

    return {"_": gettext_, "gettext": gettext_, "ngettext": ngettext_}


def _date_formatter(locale: Locale) -> Any:
    """A Jinja filter: an instant as a medium date and a short time in ``locale``, in the render's ``tz``
    (cached: an email shows each instant in its text and its HTML)."""
    pattern = str(get_datetime_format("medium", locale=locale)).replace("'", "")

    @lru_cache(maxsize=1024)
    def formatted(moment: datetime, zone: tzinfo) -> str:
        local = moment.astimezone(zone)
        return pattern.format(format_time(local, "short", locale=locale), format_date(local, "medium", locale=locale))

    @jinja2.pass_context
    def when(context: jinja2.runtime.Context, moment: datetime) -> str:
        return formatted(moment, context["tz"])

    return when
