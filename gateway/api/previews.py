"""``GET /v1/previews``: a gallery of every email kind in every language, rendered with sample data.

The gallery shows each email's HTML (in a frame, at desktop or phone width, light or dark) beside its
subject and plain text, filtered by kind and language. Previews show sample data only (a ticket with a
long thread; nothing from the store), so they need no API key: a designer or a translator opens them
straight in a browser.
"""

from __future__ import annotations

from html import escape
from typing import Literal
from urllib.parse import urlencode

from babel import Locale
from fastapi import APIRouter, HTTPException, Query, status
from fastapi.responses import HTMLResponse, PlainTextResponse, Response

from gateway.api.errors import error_responses
from outbound.render import Renderer
from outbound.samples import sample_context

__all__ = ["router_for"]

#: Frame widths: a desktop mail client's reading pane and a phone's screen (CSS pixels).
WIDTHS = {"desktop": 660, "phone": 375}
#: Dark mode as a mail client applies it: the email's own ``prefers-color-scheme: dark`` rules, always on.
_DARK_QUERY = "@media (prefers-color-scheme: dark)"

_STYLE = """
:root { color-scheme: light dark; --bg: #f4f5f7; --card: #fff; --ink: #1f2328; --muted: #6b7280; --line: #d0d4da; }
@media (prefers-color-scheme: dark) { :root { --bg: #16181d; --card: #22252c; --ink: #e6e6e6; --muted: #a3a7b0;
  --line: #3a3f49; } }
body { margin: 0; background: var(--bg); color: var(--ink);
  font: 15px/1.5 -apple-system, 'Segoe UI', Roboto, sans-serif; }
header { position: sticky; top: 0; z-index: 1; background: var(--card); border-bottom: 1px solid var(--line);
  padding: 12px 20px; }
h1 { font-size: 18px; margin: 0 0 8px; }
nav { display: flex; flex-wrap: wrap; gap: 6px 14px; align-items: center; font-size: 13px; }
nav span { color: var(--muted); }
nav a { color: inherit; padding: 2px 8px; border: 1px solid var(--line); border-radius: 12px; text-decoration: none; }
nav a[aria-current] { background: #3b5bdb; border-color: #3b5bdb; color: #fff; }
main { padding: 20px; display: grid; gap: 20px; }
section.email { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 14px 16px; }
section.email h2 { font-size: 15px; margin: 0 0 4px; }
section.email .subject { color: var(--muted); font-size: 13px; margin: 0 0 10px; }
.pair { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; }
iframe { border: 1px solid var(--line); border-radius: 6px; background: #fff; height: 820px; flex: none; }
pre { flex: 1 1 320px; min-width: 280px; max-height: 820px; overflow: auto; margin: 0; padding: 12px;
  background: var(--bg); border: 1px solid var(--line); border-radius: 6px; font-size: 12.5px; white-space: pre-wrap; }
"""


def _language_name(locale: str) -> str:
    parsed = Locale.parse(locale)
    return f"{parsed.get_display_name('en')} · {parsed.get_display_name(locale)}"


def router_for(*, renderer: Renderer) -> APIRouter:
    """Routes for template previews."""
    router = APIRouter(tags=["previews"])
    kinds, locales = sorted(renderer.kinds), sorted(renderer.locales)

    @router.get("/v1/previews", response_class=HTMLResponse, responses=error_responses(404, 422))
    def gallery(
        kind: str | None = Query(None, description="only this email kind"),
        locale: str | None = Query(None, max_length=35, description="only this language (negotiated)"),
        width: Literal["desktop", "phone"] = Query("desktop", description="the frame's width"),
        theme: Literal["light", "dark"] = Query("light", description="the email as a dark-mode client shows it"),
    ) -> str:
        """Every email kind in every language (or the ones asked for): HTML and plain text side by side."""
        if kind is not None and kind not in renderer.kinds:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no email kind {kind!r}; known: {', '.join(kinds)}")
        chosen_locale = renderer.negotiate(locale) if locale else None
        state = {"kind": kind, "locale": chosen_locale, "width": width, "theme": theme}

        def link(label: str, **change: str | None) -> str:
            wanted = {**state, **change}
            query = urlencode({k: v for k, v in wanted.items() if v and (k, v) not in (("width", "desktop"),
                                                                                     ("theme", "light"))})
            current = ' aria-current="true"' if wanted == state else ""
            return f'<a href="/v1/previews{"?" + escape(query) if query else ""}"{current}>{escape(label)}</a>'

        nav = (
            "<nav><span>Kind</span>" + link("all", kind=None) + "".join(link(k, kind=k) for k in kinds) + "</nav>"
            "<nav><span>Language</span>" + link("all", locale=None)
            + "".join(link(loc.replace("_", "-"), locale=loc) for loc in locales) + "</nav>"
            "<nav><span>View</span>" + link("desktop", width="desktop") + link("phone", width="phone")
            + link("light", theme="light") + link("dark", theme="dark") + "</nav>"
        )
        sections = []
        for loc in [chosen_locale] if chosen_locale else locales:
            for k in [kind] if kind else kinds:
                email = renderer.render(k, loc, sample_context(k, loc))
                base = f"/v1/previews/{escape(k)}?locale={loc}"
                frame = base + ("&amp;theme=dark" if theme == "dark" else "")
                sections.append(
                    f'<section class="email" id="{escape(k)}-{loc}" lang="{loc.replace("_", "-")}">'
                    f"<h2>{escape(k)} &middot; {escape(_language_name(loc))}</h2>"
                    f'<p class="subject">{escape(email.subject)} &middot; <a href="{base}">HTML</a> '
                    f'&middot; <a href="{base}&amp;part=text">text</a></p>'
                    f'<div class="pair"><iframe title="{escape(k)} {loc} HTML" src="{frame}" loading="lazy" '
                    f'width="{WIDTHS[width]}"></iframe>'
                    f'<pre dir="auto">Subject: {escape(email.subject)}\n\n{escape(email.text)}</pre></div></section>'
                )
        return (
            '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>Email previews</title><style>{_STYLE}</style></head><body>"
            f"<header><h1>Email previews</h1>{nav}</header><main>{''.join(sections)}</main></body></html>"
        )

    @router.get(
        "/v1/previews/{kind}",
        response_class=HTMLResponse,
        responses={
            200: {
                "description": "The HTML body (`part=html`), or the subject and the plain-text body (`part=text`)",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            },
            **error_responses(404, 422),
        },
    )
    def preview(
        kind: str,
        locale: str = Query("en", max_length=35, description="the customer's locale; the default when unknown"),
        part: Literal["html", "text"] = Query("html", description="the HTML body, or the plain-text body"),
        theme: Literal["light", "dark"] = Query("light", description="the HTML as a dark-mode client shows it"),
    ) -> Response:
        """The email ``kind`` as a customer with ``locale`` would get it, with sample data."""
        if kind not in renderer.kinds:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no email kind {kind!r}; known: {', '.join(kinds)}")
        email = renderer.render(kind, locale, sample_context(kind, locale))
        headers = {"Content-Language": email.locale.replace("_", "-")}
        if part == "text":
            return PlainTextResponse(f"Subject: {email.subject}\n\n{email.text}", headers=headers)
        html = email.html.replace(_DARK_QUERY, "@media all") if theme == "dark" else email.html
        return HTMLResponse(html, headers=headers)

    return router
