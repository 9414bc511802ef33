"""Who may call what: the help desk's keys everything (:func:`require_key` on its routes), a
Messenger key one customer's view (:func:`require_principal` on the Messenger's routes).

Keys come as ``Authorization: Bearer <key>``. A Messenger key (``w2cm.``, see
``gateway.messenger.tokens``) may also come as ``?access_token=`` because a browser's
``EventSource`` cannot set headers; help-desk keys never travel in URLs.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from fastapi import HTTPException, Request, status

from gateway.errors import BadMessengerToken
from gateway.messenger.tokens import looks_like_token, verify

__all__ = ["Principal", "require_key", "require_principal"]


@dataclass(frozen=True)
class Principal:
    """The caller: the help desk (``customer_id`` None) or a Messenger acting for ``customer_id``."""

    customer_id: str | None = None

    @property
    def is_helpdesk(self) -> bool:
        """Whether the caller holds a help-desk key."""
        return self.customer_id is None

    def may_read(self, customer_id: str) -> bool:
        """Whether the caller may see ``customer_id``'s tickets (others' are answered 404)."""
        return self.customer_id is None or self.customer_id == customer_id


def _refuse(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail, {"WWW-Authenticate": "Bearer"})


def require_principal(
    keys: Sequence[str], *, messenger_secret: bytes, clock: Callable[[], datetime]
) -> Callable[[Request], Awaitable[Principal]]:
    """A dependency resolving the caller from a help-desk key or a Messenger key.

    A coroutine although it never waits: FastAPI runs a plain function dependency on a thread of its
    pool, and each hop to a thread and back waits for the interpreter lock behind whatever else runs."""
    encoded = [k.encode() for k in keys]

    async def resolve(request: Request) -> Principal:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        token = token.strip() if scheme.lower() == "bearer" else ""
        in_url = not token
        if in_url:
            token = request.query_params.get("access_token", "").strip()
        if not token:
            raise _refuse("missing bearer API key")
        if looks_like_token(token):
            try:
                grant = verify(token, secrets=[messenger_secret], now=clock())
            except BadMessengerToken as exc:
                raise _refuse(str(exc)) from None
            return Principal(grant.customer_id)
        if in_url:
            raise _refuse("only Messenger keys may be given as access_token; send API keys in the Authorization header")
        if not any([hmac.compare_digest(token.encode(), key) for key in encoded]):
            raise _refuse("invalid API key")
        return Principal()

    return resolve


def require_key(keys: Sequence[str]) -> Callable[[Request], Awaitable[None]]:
    """A dependency that lets a request through only with ``Authorization: Bearer <one of keys>``
    (a coroutine, like :func:`require_principal`'s, to run on the event loop)."""
    encoded = [k.encode() for k in keys]

    async def check(request: Request) -> None:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing bearer API key", {"WWW-Authenticate": "Bearer"})
        given = token.strip().encode()
        # Compare against every key, in constant time each, so timing does not tell which failed.
        if not any([hmac.compare_digest(given, key) for key in encoded]):
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "invalid API key", {"WWW-Authenticate": "Bearer"})

    return check
