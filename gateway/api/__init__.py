"""The HTTP API (FastAPI): one router per audience, every answer a response model, errors as ``{"error": ...}``.

:func:`create_api` lives in ``gateway.api.app`` and is imported on first use, so a command that only
prints the response models (``web2chat-gateway outbox --json``) does not import FastAPI.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway.api.app import create_api

__all__ = ["create_api"]


def __getattr__(name: str) -> Any:
    if name == "create_api":
        from gateway.api.app import create_api

        return create_api
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
