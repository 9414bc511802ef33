"""``GET /v1/previews``: every email template rendered with sample data, for a browser.

Previews show sample data only (nothing from the store), so they need no API key: a designer
opens them straight in a browser.
"""

from __future__ import annotations

from html import escape
from typing import Literal

from fastapi import APIRouter, HTTPException, Query, status
from fastapi.responses import HTMLResponse, PlainTextResponse, Response

from gateway.api.errors import error_responses
from outbound.render import Renderer
from outbound.samples import sample_context

__all__ = ["router_for"]


def router_for(*, renderer: Renderer) -> APIRouter:
    """Routes for template previews."""
    router = APIRouter(tags=["previews"])
    renderer = renderer

    @router.get("/v1/previews", response_class=HTMLResponse)
    def index() -> str:
        """Links to every email kind in every locale."""
        rows = "".join(
            f"<li>{escape(kind)}: "
            + " ".join(
                f'<a href="/v1/previews/{escape(kind)}?locale={loc}">{loc}</a> '
                f'(<a href="/v1/previews/{escape(kind)}?locale={loc}&amp;part=text">text</a>)'
                for loc in sorted(renderer.locales)
            )
            + "</li>"
            for kind in sorted(renderer.kinds)
        )
        return f"<!DOCTYPE html><title>Email previews</title><h1>Email previews</h1><ul>{rows}</ul>"

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
        locale: str = Query("en", max_length=35, description="the customer's locale; English when unknown"),
        part: Literal["html", "text"] = Query("html", description="the HTML body, or the plain-text body"),
    ) -> Response:
        """The email ``kind`` as a customer with ``locale`` would get it, with sample data."""
        if kind not in renderer.kinds:
            known = ", ".join(sorted(renderer.kinds))
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no email kind {kind!r}; known: {known}")
        email = renderer.render(kind, locale, sample_context(kind, locale))
        headers = {"Content-Language": renderer.negotiate(locale).replace("_", "-")}
        if part == "text":
            return PlainTextResponse(f"Subject: {email.subject}\n\n{email.text}", headers=headers)
        return HTMLResponse(email.html, headers=headers)

    return router
