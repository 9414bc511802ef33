"""Helpers for Messenger tests: help-desk events, Messenger keys and a Server-Sent Events reader."""

from __future__ import annotations

import json
import queue
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from gateway.messenger import tokens

__all__ = ["EventStream", "SseEvent", "created", "key_for", "reply", "state"]


def created(
    ticket_id: str, *, customer: str = "c-1", by: str = "customer", at: str = "2026-11-26T10:00:00Z",
    title: str = "Printer prints blank pages", description: str = "Every page comes out blank.",
) -> dict[str, Any]:
    """A ``ticket.created`` event."""
    return {
        "type": "ticket.created", "id": f"created-{ticket_id}", "occurred_at": at,
        "ticket": {"id": ticket_id, "title": title, "description": description, "state": "submitted",
                   "created_by": by},
        "customer": {"id": customer, "email": f"{customer}@customer.example.test", "name": customer.title()},
    }


def reply(ticket_id: str, reply_id: str, *, at: str = "2026-11-26T10:05:00Z", text: str = "Try a new cartridge.") -> (
    dict[str, Any]
):
    """A ``ticket.reply`` event."""
    return {
        "type": "ticket.reply", "id": f"evt-{reply_id}", "occurred_at": at, "ticket_id": ticket_id,
        "reply": {"id": reply_id, "author": {"name": "Grace"}, "text": text},
    }


def state(ticket_id: str, old: str, new: str, *, at: str = "2026-11-26T11:00:00Z") -> dict[str, Any]:
    """A ``ticket.state_changed`` event."""
    return {
        "type": "ticket.state_changed", "id": f"evt-{ticket_id}-{old}-{new}", "occurred_at": at,
        "ticket_id": ticket_id, "from": old, "to": new,
    }


def key_for(customer_id: str, secret: bytes, *, valid_for: timedelta = timedelta(hours=1)) -> str:
    """A Messenger key for ``customer_id``."""
    return tokens.issue(customer_id, expires_at=datetime.now(UTC) + valid_for, secret=secret)


@dataclass(frozen=True)
class SseEvent:
    """One Server-Sent Event as a client sees it."""

    id: int
    event: str
    data: dict[str, Any]


class EventStream:
    """Reads an event stream in a background thread; ``next()`` takes events in order."""

    def __init__(self, url: str, *, headers: dict[str, str] | None = None, limit: int | None = None) -> None:
        self._url, self._headers, self._limit = url, headers or {}, limit
        self._events: queue.Queue[SseEvent | BaseException] = queue.Queue()
        self.connected = threading.Event()
        self.status: int | None = None
        self._client = httpx.Client(timeout=httpx.Timeout(10, read=60))
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self.connected.wait(10):
            raise AssertionError(f"the stream did not connect (status {self.status})")

    def _run(self) -> None:
        try:
            with self._client.stream("GET", self._url, headers=self._headers) as response:
                self.status = response.status_code
                if response.status_code != 200:
                    response.read()
                    self._events.put(AssertionError(f"{response.status_code}: {response.text}"))
                    self.connected.set()
                    return
                fields: dict[str, str] = {}
                count = 0
                for line in response.iter_lines():
                    if line == ": connected":
                        self.connected.set()
                    elif line == "" and "data" in fields:
                        self._events.put(SseEvent(int(fields["id"]), fields["event"], json.loads(fields["data"])))
                        fields, count = {}, count + 1
                        if self._limit is not None and count >= self._limit:
                            return
                    elif line and not line.startswith(":"):
                        name, _, value = line.partition(":")
                        fields[name] = value.removeprefix(" ")
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            self._events.put(exc)
            self.connected.set()

    def next(self, timeout: float = 10) -> SseEvent:
        """The next event; fail after ``timeout`` seconds."""
        try:
            item = self._events.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no event within {timeout}s") from None
        if isinstance(item, BaseException):
            raise item
        return item

    def quiet(self, timeout: float) -> bool:
        """Whether no event arrives within ``timeout`` seconds."""
        try:
            item = self._events.get(timeout=timeout)
        except queue.Empty:
            return True
        self._events.queue.appendleft(item)
        return False

    def close(self) -> None:
        """Wait for the reader to end (the server ends streams when it stops)."""
        self._thread.join(timeout=10)
        self._client.close()
