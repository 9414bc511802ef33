"""Telling the help desk about a landed reply: a signed JSON POST, stored with the reply, retried
on the one retry policy (``gateway.retry.WEBHOOK_RETRIES``) until a 2xx, else ``failed`` after
the last attempt (listed and replayed with ``web2chat-gateway webhooks`` or the API); with its
store queries.

Signature: ``X-Web2Chat-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`` with
``X-Web2Chat-Timestamp: <unix seconds>``; the receiver recomputes it and rejects old timestamps.
Idempotency: ``X-Web2Chat-Delivery: <webhook call id>`` is the same on every attempt and replay of
one call, so a receiver that got a call whose answer was lost can recognise it when it comes again.

Batches (``GATEWAY_WEBHOOK_BATCH`` above 1, for help desks that accept them): every POST then has
the body ``{"deliveries": [{"delivery": "<call id>", "event": <the call's payload>}, ...]}`` with up
to that many calls of one job (one call alone is a batch of one), ``X-Web2Chat-Batch: <count>`` and
no ``X-Web2Chat-Delivery`` header; the signature covers the whole body, and a 2xx answers for every
call in it (anything else retries each of them). The delivery ids inside are the idempotency keys.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import random
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import urllib3
from sqlalchemy import Connection, bindparam, insert, select, update

from gateway.logs import event
from gateway.metrics import WEBHOOK_ATTEMPTS, child
from gateway.models import WebhookStatus
from gateway.retry import WEBHOOK_RETRIES, RetryPolicy
from gateway.store.db import Database
from gateway.store.sqlite import Prebuilt
from gateway.store.tables import webhook_deliveries
from gateway.store.uow import note

__all__ = [
    "BATCH_HEADER",
    "DELIVERY_HEADER",
    "WEBHOOKS_QUEUED",
    "Attempt",
    "HttpPoster",
    "MemoryPoster",
    "Poster",
    "WebhookCall",
    "WebhookDeliverer",
    "WebhookDraft",
    "WebhookStore",
    "batch_body",
    "insert_webhook",
    "insert_webhooks",
    "sign",
]

log = logging.getLogger(__name__)

#: The hand-on topic of webhook calls a transaction stored (or queued again): their pks.
WEBHOOKS_QUEUED = "webhooks_queued"

#: Header carrying the signature.
SIGNATURE_HEADER = "X-Web2Chat-Signature"
#: Header carrying the signed timestamp.
TIMESTAMP_HEADER = "X-Web2Chat-Timestamp"
#: Header carrying the call's id, the same on every attempt of it: the receiver's idempotency key.
DELIVERY_HEADER = "X-Web2Chat-Delivery"
#: Header carrying how many calls a batch POST carries.
BATCH_HEADER = "X-Web2Chat-Batch"
#: How long a worker holds a call it is making before another may take it over.
POST_LEASE = timedelta(minutes=2)
#: Seconds one POST may take.
POST_TIMEOUT = 10.0
#: Default for how many calls one deliverer posts at once (``GATEWAY_WEBHOOK_CONCURRENCY``).
WEBHOOK_CONCURRENCY = 8


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def batch_body(calls: Sequence[WebhookCall]) -> bytes:
    """The body of a batch POST: each call's id and its stored payload (JSON text, put in as it is)."""
    items = ",".join(f'{{"delivery":"{call.pk}","event":{call.payload}}}' for call in calls)
    return f'{{"deliveries":[{items}]}}'.encode()


class Poster(Protocol):
    """Makes one HTTP POST; returns the status code, raises ``OSError``/``urllib3.exceptions.HTTPError`` if
    none came."""

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> int: ...


class HttpPoster:
    """POSTs with urllib3: one pool of kept-alive connections per host, shared by the posting threads
    (thread-safe), TLS certificates verified, no redirects followed and no retries (the store's retry
    policy decides). urllib3 rather than httpx: 330 against 710 us of CPU per POST on loopback
    (docs/benchmarks.md)."""

    def __init__(self, *, timeout: float = POST_TIMEOUT, connections: int = WEBHOOK_CONCURRENCY) -> None:
        # ``connections``: the most posts made at once (the posting threads and the worker's own), so
        # none is opened only to be discarded.
        self._pool = urllib3.PoolManager(timeout=urllib3.Timeout(timeout), retries=False, maxsize=connections)

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        answer = self._pool.request("POST", url, body=body, headers=headers, redirect=False)
        return int(answer.status)


@dataclass
class MemoryPoster:
    """In-memory poster for tests: records each call and answers the next of ``answers`` (200 when empty)."""

    answers: list[int] = field(default_factory=list)
    calls: list[tuple[str, bytes, dict[str, str]]] = field(default_factory=list)

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        self.calls.append((url, body, headers))
        return self.answers.pop(0) if self.answers else 200


@dataclass(frozen=True)
class Attempt:
    """The outcome of one attempt at a call: its new status, when to try again, what went wrong."""

    pk: int
    status: WebhookStatus
    next_attempt_at: datetime | None = None
    error: str | None = None


@dataclass(frozen=True)
class WebhookDraft:
    """A help-desk webhook call to store with the reply it announces (same transaction)."""

    url: str
    payload: str


@dataclass(frozen=True, kw_only=True)
class WebhookCall:
    """One stored webhook call."""

    pk: int
    entry_pk: int | None
    url: str
    payload: str
    status: WebhookStatus
    attempts: int
    last_error: str | None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    next_attempt_at: datetime | None = None


_CLAIMABLE = (WebhookStatus.QUEUED.value, WebhookStatus.RETRYING.value, WebhookStatus.SENDING.value)


#: Statements built once (the landing and the delivery of every reply run them).
_ADD_CALL = Prebuilt(insert(webhook_deliveries))
_CLAIM_CALLS = (
    update(webhook_deliveries)
    .where(webhook_deliveries.c.pk.in_(bindparam("b_pks", expanding=True)),
           webhook_deliveries.c.status.in_(_CLAIMABLE), webhook_deliveries.c.next_attempt_at <= bindparam("b_now"))
    .values(status=WebhookStatus.SENDING.value, next_attempt_at=bindparam("b_until"), updated_at=bindparam("b_now"))
    .returning(*webhook_deliveries.c)
)
_RECORD_CALL = Prebuilt(update(webhook_deliveries).where(webhook_deliveries.c.pk == bindparam("b_pk"))
                        .values(attempts=webhook_deliveries.c.attempts + 1))


def insert_webhook(conn: Connection, draft: WebhookDraft, *, entry_pk: int | None, now: datetime) -> int:
    """Store a webhook call (about thread entry ``entry_pk``, if it announces one) inside the caller's
    transaction; handed on once committed."""
    (pk,) = insert_webhooks(conn, [(draft, entry_pk, now)])
    return pk


def insert_webhooks(conn: Connection, calls: Sequence[tuple[WebhookDraft, int | None, datetime]]) -> list[int]:
    """Store several webhook calls (``(draft, entry it announces, when)`` each) in one statement inside the
    caller's transaction; their pks, in order, each handed on once committed."""
    rows = [{"entry_pk": entry_pk, "url": draft.url, "payload": draft.payload, "status": WebhookStatus.QUEUED.value,
             "attempts": 0, "created_at": now, "updated_at": now, "next_attempt_at": now}
            for draft, entry_pk, now in calls]
    pks = _ADD_CALL.insert_many(conn, rows)
    for pk in pks:
        note(conn, WEBHOOKS_QUEUED, pk)
    return pks


def _call(m: Any) -> WebhookCall:
    return WebhookCall(pk=m["pk"], entry_pk=m["entry_pk"], url=m["url"], payload=m["payload"],
                       status=WebhookStatus(m["status"]), attempts=m["attempts"], last_error=m["last_error"],
                       created_at=m["created_at"], updated_at=m["updated_at"], next_attempt_at=m["next_attempt_at"])


class WebhookStore:
    """Reads and updates webhook calls."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def get(self, pk: int) -> WebhookCall | None:
        """Webhook call ``pk``, or None."""
        with self._db.read() as conn:
            row = conn.execute(select(webhook_deliveries).where(webhook_deliveries.c.pk == pk)).first()
        return _call(row._mapping) if row is not None else None

    def recent(self, *, status: WebhookStatus | None = None, limit: int = 100) -> list[WebhookCall]:
        """Webhook calls, newest first (only those in ``status`` if given)."""
        query = select(webhook_deliveries).order_by(webhook_deliveries.c.pk.desc()).limit(limit)
        if status is not None:
            query = query.where(webhook_deliveries.c.status == status.value)
        with self._db.read() as conn:
            return [_call(r._mapping) for r in conn.execute(query)]

    def due(self, *, before: datetime, limit: int = 500) -> list[int]:
        """Calls waiting (or stuck sending) whose next attempt was due before ``before``: the sweeper's work."""
        query = (
            select(webhook_deliveries.c.pk)
            .where(webhook_deliveries.c.status.in_(_CLAIMABLE), webhook_deliveries.c.next_attempt_at <= before)
            .order_by(webhook_deliveries.c.next_attempt_at)
            .limit(limit)
        )
        with self._db.read() as conn:
            return list(conn.execute(query).scalars())

    def claim_many(self, pks: Sequence[int], *, now: datetime, lease: timedelta) -> list[WebhookCall]:
        """Take the calls of ``pks`` that are due, in one statement; those that are not (delivered,
        failed, or held by another worker) are left out."""
        if not pks:
            return []

        params = {"b_pks": sorted(set(pks)), "b_now": now, "b_until": now + lease}

        def work(conn: Connection) -> list[WebhookCall]:
            rows = conn.execute(_CLAIM_CALLS, params)
            return sorted((_call(r._mapping) for r in rows), key=lambda c: c.pk)

        return self._db.write(work, durable=False)  # a lost claim only lets the calls be claimed again

    def claim(self, pk: int, *, now: datetime, lease: timedelta) -> WebhookCall | None:
        """Take call ``pk`` if it is due; None if it is not."""
        claimed = self.claim_many([pk], now=now, lease=lease)
        return claimed[0] if claimed else None

    def record(self, attempts: Sequence[Attempt], *, now: datetime) -> None:
        """Record the outcome of each attempt, in one transaction (in key order)."""
        if not attempts:
            return
        rows = [{"b_pk": a.pk, "status": a.status.value, "updated_at": now, "next_attempt_at": a.next_attempt_at,
                 "last_error": a.error} for a in sorted(attempts, key=lambda a: a.pk)]
        # Lost, the calls are made again after their lease (at least once).
        self._db.write(lambda conn: _RECORD_CALL.run_many(conn, rows), durable=False)

    def mark(self, pk: int, status: WebhookStatus, *, now: datetime, next_attempt_at: datetime | None = None,
             error: str | None = None) -> None:
        """Record an attempt on call ``pk``."""
        self.record([Attempt(pk, status, next_attempt_at, error)], now=now)

    def replay(self, pk: int, *, now: datetime) -> bool:
        """Queue a ``failed`` call again, with a fresh set of attempts; False if it is not failed."""

        def work(conn: Connection) -> bool:
            queued = conn.execute(
                update(webhook_deliveries)
                .where(webhook_deliveries.c.pk == pk, webhook_deliveries.c.status == WebhookStatus.FAILED.value)
                .values(status=WebhookStatus.QUEUED.value, attempts=0, next_attempt_at=now, updated_at=now)
            ).rowcount == 1
            if queued:
                note(conn, WEBHOOKS_QUEUED, pk)
            return queued

        return self._db.write(work)


class WebhookDeliverer:
    """Makes stored webhook calls; a lost or repeated job calls nothing twice while a call is held.

    The calls of one job (the replies one transaction landed) are claimed in one statement, posted
    side by side (up to ``concurrency`` at once, on kept-alive connections) and recorded in one
    transaction."""

    def __init__(
        self,
        *,
        store: WebhookStore,
        poster: Poster,
        secret: str,
        clock: Callable[[], datetime],
        retry_later: Callable[[int, float], None],
        jitter: Callable[[], float] = random.random,
        retries: RetryPolicy = WEBHOOK_RETRIES,
        concurrency: int = WEBHOOK_CONCURRENCY,
        batch: int = 1,
    ) -> None:
        self._store = store
        self._batch = batch
        self._poster = poster
        self._secret = secret
        self._clock = clock
        self._retry_later = retry_later
        self._jitter = jitter
        self._retries = retries
        self._concurrency = concurrency
        self._pool: ThreadPoolExecutor | None = None

    def deliver(self, pk: int) -> WebhookStatus | None:
        """Make call ``pk`` once; its new status (None: not due, nothing done)."""
        return self.deliver_many([pk]).get(pk)

    def deliver_job(self, pks: int | list[int]) -> None:
        """The job: the calls of one hand-on (a list; one pk from a job queued by an older version)."""
        self.deliver_many([pks] if isinstance(pks, int) else pks)

    def deliver_many(self, pks: Sequence[int]) -> dict[int, WebhookStatus]:
        """Make each due call of ``pks`` once; the new status of each call made."""
        now = self._clock()
        calls = self._store.claim_many(pks, now=now, lease=POST_LEASE)
        if not calls:
            return {}
        groups = self._groups(calls)
        if len(groups) == 1 or self._concurrency <= 1:
            posted = [self._post(group, now) for group in groups]
        else:
            posted = list(self._posting_pool().map(lambda group: self._post(group, now), groups))
        errors = [error for group, error in zip(groups, posted, strict=True) for _ in group]
        calls = [call for group in groups for call in group]
        now = self._clock()
        attempts = [self._attempt(call, error, now) for call, error in zip(calls, errors, strict=True)]
        self._store.record(attempts, now=now)
        for call, attempt, error in zip(calls, attempts, errors, strict=True):
            self._report(call, attempt, error, now)
        return {a.pk: a.status for a in attempts}

    def close(self) -> None:
        """Stop the posting threads (after the posts in flight)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def _posting_pool(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._concurrency, thread_name_prefix="gateway-webhook")
        return self._pool

    def _groups(self, calls: Sequence[WebhookCall]) -> list[list[WebhookCall]]:
        """The POSTs to make: one per call, or batches of up to ``batch`` calls to the same URL."""
        if self._batch <= 1:
            return [[call] for call in calls]
        by_url: dict[str, list[WebhookCall]] = {}
        for call in calls:
            by_url.setdefault(call.url, []).append(call)
        return [same[i:i + self._batch] for same in by_url.values() for i in range(0, len(same), self._batch)]

    def _post(self, group: Sequence[WebhookCall], now: datetime) -> str | None:
        """POST ``group`` (one call, or a batch); None on a 2xx, else what went wrong."""
        timestamp = int(now.timestamp())
        headers = {"Content-Type": "application/json", TIMESTAMP_HEADER: str(timestamp)}
        if self._batch <= 1:
            (call,) = group
            body = call.payload.encode()
            headers[DELIVERY_HEADER] = str(call.pk)
        else:
            body = batch_body(group)
            headers[BATCH_HEADER] = str(len(group))
        headers[SIGNATURE_HEADER] = sign(self._secret, timestamp, body)
        try:
            code = self._poster.post(group[0].url, body, headers)
        except (OSError, urllib3.exceptions.HTTPError) as exc:
            return f"{type(exc).__name__}: {exc}"
        return None if 200 <= code < 300 else f"answered {code}"

    def _attempt(self, call: WebhookCall, error: str | None, now: datetime) -> Attempt:
        if error is None:
            return Attempt(call.pk, WebhookStatus.DELIVERED)
        attempts = call.attempts + 1
        if self._retries.gives_up(attempts):
            return Attempt(call.pk, WebhookStatus.FAILED, error=f"gave up after {attempts} attempts: {error}")
        delay = self._retries.delay(attempts, jitter=self._jitter())
        return Attempt(call.pk, WebhookStatus.RETRYING, now + timedelta(seconds=delay), error)

    def _report(self, call: WebhookCall, attempt: Attempt, error: str | None, now: datetime) -> None:
        attempts = call.attempts + 1
        child(WEBHOOK_ATTEMPTS, attempt.status.value).inc()
        if attempt.status is WebhookStatus.DELIVERED:
            event(log, "webhook.delivered", webhook_id=call.pk, attempts=attempts)
        elif attempt.status is WebhookStatus.FAILED:
            event(log, "webhook.failed", level=logging.WARNING, webhook_id=call.pk, attempts=attempts, error=error)
        else:
            assert attempt.next_attempt_at is not None
            delay = max(0.0, (attempt.next_attempt_at - now).total_seconds())
            event(log, "webhook.retrying", webhook_id=call.pk, attempts=attempts, error=error,
                  retry_in_seconds=round(delay))
            try:
                self._retry_later(call.pk, delay)
            except Exception:  # the broker is down: the sweeper finds the call when it is due
                log.warning("could not schedule webhook call %s again; the sweeper will", call.pk, exc_info=True)
