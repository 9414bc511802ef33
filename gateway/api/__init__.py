"""The HTTP API (FastAPI): one router per audience, errors as ``{"error": ...}`` JSON."""

from __future__ import annotations

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

import gateway
from gateway import demo
from gateway.api import events, inbound, messenger, ops, previews, stream, webhooks
from gateway.api.access import require_principal
from gateway.api.auth import require_key
from gateway.api.errors import install_event_errors
from gateway.app import Gateway
from gateway.errors import StoreUnavailable

__all__ = ["create_api"]


def _field(loc: tuple[int | str, ...]) -> str:
    parts = [str(p) for p in loc if p != "body"]
    return ".".join(parts) or "body"


def create_api(gw: Gateway) -> FastAPI:
    """The API app for ``gw``; OpenAPI at ``/docs``."""
    app = FastAPI(title="Web2Chat email gateway", version=gateway.__version__)
    keyed = [Depends(require_key(gw.api_keys))]
    app.include_router(events.router_for(gw), dependencies=keyed)
    app.include_router(ops.router_for(gw), dependencies=keyed)
    app.include_router(inbound.router_for(gw), dependencies=keyed)
    app.include_router(webhooks.router_for(gw), dependencies=keyed)
    app.include_router(previews.router_for(gw))  # sample data only: no key, so a browser can open it
    principal = require_principal(gw.api_keys, messenger_secret=gw.messenger_secret, clock=gw.clock)
    app.include_router(messenger.router_for(gw, principal=principal))
    app.include_router(stream.router_for(gw, principal=principal))
    app.include_router(demo.router())

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, str]:
        """Liveness: answers without a key."""
        return {"status": "ok"}

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        fields = [_field(tuple(e["loc"])) for e in exc.errors()]
        problems = [f"{name}: {e['msg']}" for name, e in zip(fields, exc.errors(), strict=True)]
        return JSONResponse({"error": "invalid request: " + "; ".join(problems), "fields": fields}, status_code=422)

    install_event_errors(app)

    @app.exception_handler(OperationalError)
    @app.exception_handler(StoreUnavailable)
    async def store_down(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"error": "the store is unavailable; try again"}, status_code=503)

    return app
