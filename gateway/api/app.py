"""The API app: FastAPI, with one router per audience and the error handlers; built from the composition root."""

from __future__ import annotations

from fastapi import Depends, FastAPI

import gateway
from gateway import demo
from gateway.api import attachments, events, health, inbound, messenger, ops, previews, stream, suppressions, webhooks
from gateway.api.access import require_key, require_principal
from gateway.api.docs import install_docs
from gateway.api.errors import ErrorOut, install_error_handlers
from gateway.api.openapi import DocumentedApi
from gateway.app import Gateway
from gateway.broker import ping

__all__ = ["create_api"]


def create_api(gw: Gateway) -> FastAPI:
    """The API app for ``gw``; OpenAPI at ``/docs``."""
    title = "Web2Chat email gateway"
    app = DocumentedApi(
        title=title, version=gateway.__version__, referenced=(ErrorOut, *stream.FRAME_MODELS),
        docs_url=None, redoc_url=None,  # /docs is served from the package's files below; ReDoc would need a CDN
    )
    install_docs(app, title=title)
    keyed = [Depends(require_key(gw.api_keys))]
    app.include_router(events.router_for(events=gw.events, clock=gw.clock), dependencies=keyed)
    app.include_router(ops.router_for(outbox=gw.outbox), dependencies=keyed)
    app.include_router(ops.metrics_router(outbox=gw.outbox, clock=gw.clock))
    app.include_router(inbound.router_for(inbound=gw.inbound, recipients=gw.recipients, clock=gw.clock,
                                          max_message_bytes=gw.settings.max_message_bytes), dependencies=keyed)
    app.include_router(webhooks.router_for(webhooks=gw.webhooks, clock=gw.clock), dependencies=keyed)
    app.include_router(suppressions.router_for(delivery=gw.delivery), dependencies=keyed)
    app.include_router(previews.router_for(renderer=gw.renderer))  # sample data only: no key, for a browser
    principal = require_principal(gw.api_keys, messenger_secret=gw.messenger_secret, clock=gw.clock)
    app.include_router(messenger.router_for(
        messenger=gw.messenger, clock=gw.clock, messenger_secret=gw.messenger_secret,
        messenger_url=gw.settings.messenger_url, principal=principal,
    ))
    app.include_router(stream.router_for(hub=gw.hub, principal=principal))
    app.include_router(attachments.router_for(inbound=gw.inbound, principal=principal))
    app.include_router(demo.router())
    checks: dict[str, health.Check] = {"store": health.store_answers(gw.db)}
    if gw.settings.redis_url:
        checks["broker"] = lambda: ping(gw.jobs.broker)
    app.include_router(health.router_for(checks=checks))

    install_error_handlers(app)
    return app
