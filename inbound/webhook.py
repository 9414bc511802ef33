"""Telling the help desk about a landed reply: a signed JSON POST, retried with backoff until a 2xx.

Signature: ``X-Web2Chat-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`` with
``X-Web2Chat-Timestamp: <unix seconds>``; the receiver recomputes it and rejects old timestamps.
"""

from __future__ import annotations

import hashlib
import hmac
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

import httpx

from gateway.store.webhooks import WebhookStatus, WebhookStore
from outbound.retry import backoff_seconds

__all__ = ["HttpPoster", "MemoryPoster", "Poster", "WebhookDeliverer", "sign"]

#: Header carrying the signature.
SIGNATURE_HEADER = "X-Web2Chat-Signature"
#: Header carrying the signed timestamp.
TIMESTAMP_HEADER = "X-Web2Chat-Timestamp"
#: How long a worker holds a call it is making before another may take it over.
POST_LEASE = timedelta(minutes=2)
#: Seconds one POST may take.
POST_TIMEOUT = 10.0


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


class Poster(Protocol):
    """Makes one HTTP POST; returns the status code, raises ``OSError``/``httpx.HTTPError`` if none came."""

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> int: ...


class HttpPoster:
    """POSTs with httpx."""

    def __init__(self, *, timeout: float = POST_TIMEOUT) -> None:
        self._client = httpx.Client(timeout=timeout)

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        return self._client.post(url, content=body, headers=headers).status_code


@dataclass
class MemoryPoster:
    """In-memory poster for tests: records each call and answers the next of ``answers`` (200 when empty)."""

    answers: list[int] = field(default_factory=list)
    calls: list[tuple[str, bytes, dict[str, str]]] = field(default_factory=list)

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        self.calls.append((url, body, headers))
        return self.answers.pop(0) if self.answers else 200


class WebhookDeliverer:
    """Makes stored webhook calls; a lost or repeated job calls nothing twice while a call is held."""

    def __init__(
        self,
        *,
        store: WebhookStore,
        poster: Poster,
        secret: str,
        clock: Callable[[], datetime],
        retry_later: Callable[[int, float], None],
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self._store = store
        self._poster = poster
        self._secret = secret
        self._clock = clock
        self._retry_later = retry_later
        self._jitter = jitter

    def deliver(self, pk: int) -> str | None:
        """Make call ``pk`` once; its new status (None: not due, nothing done)."""
        now = self._clock()
        call = self._store.claim(pk, now=now, lease=POST_LEASE)
        if call is None:
            return None
        body = call.payload.encode()
        timestamp = int(now.timestamp())
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: sign(self._secret, timestamp, body),
        }
        try:
            code = self._poster.post(call.url, body, headers)
            error = None if 200 <= code < 300 else f"answered {code}"
        except (OSError, httpx.HTTPError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        now = self._clock()
        if error is None:
            self._store.mark(pk, WebhookStatus.DELIVERED, now=now)
            return WebhookStatus.DELIVERED
        delay = backoff_seconds(call.attempts + 1, jitter=self._jitter())
        self._store.mark(pk, WebhookStatus.RETRYING, now=now, next_attempt_at=now + timedelta(seconds=delay),
                         error=error)
        self._retry_later(pk, delay)
        return WebhookStatus.RETRYING
