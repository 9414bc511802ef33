"""Bearer-key authentication for the HTTP API."""

from __future__ import annotations

import hmac
from collections.abc import Callable, Sequence

from fastapi import HTTPException, Request, status

__all__ = ["require_key"]


def require_key(keys: Sequence[str]) -> Callable[[Request], None]:
    """A dependency that lets a request through only with ``Authorization: Bearer <one of keys>``."""
    encoded = [k.encode() for k in keys]

    def check(request: Request) -> None:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing bearer API key", {"WWW-Authenticate": "Bearer"})
        given = token.strip().encode()
        # Compare against every key, in constant time each, so timing does not tell which failed.
        if not any([hmac.compare_digest(given, key) for key in encoded]):
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "invalid API key", {"WWW-Authenticate": "Bearer"})

    return check
