"""``/demo``: a small Messenger page (plain HTML and JavaScript) to try the whole story in a browser."""

from __future__ import annotations

from importlib.resources import files

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

__all__ = ["router"]

_TYPES = {"messenger.js": "text/javascript; charset=utf-8", "messenger.css": "text/css; charset=utf-8"}


def _read(name: str) -> str:
    return files(__package__).joinpath(name).read_text(encoding="utf-8")


def router() -> APIRouter:
    """Routes serving the demo page and its two assets (no key needed: the page asks for one)."""
    router = APIRouter(tags=["demo"], include_in_schema=False)
    page = _read("index.html")
    assets = {name: _read(name) for name in _TYPES}

    @router.get("/demo")
    def demo_page() -> HTMLResponse:
        return HTMLResponse(page, headers={"Cache-Control": "no-cache"})

    @router.get("/demo/{name}")
    def demo_asset(name: str) -> Response:
        if name not in assets:
            return Response(status_code=404)
        return Response(assets[name], media_type=_TYPES[name], headers={"Cache-Control": "no-cache"})

    return router
