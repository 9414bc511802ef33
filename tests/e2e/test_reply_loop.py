"""The core promise, end to end on the served gateway: ticket email out, email reply in, on the thread."""

from __future__ import annotations

import smtplib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dramatiq
import httpx
import pytest

from gateway.app import build_gateway
from gateway.run import Parts
from tests.helpers import API_KEY, gmail_reply, parse, settings_for, wait_for

CUSTOMER = "ada@customer.example.test"


def created_event(event_id: str = "evt-1", ticket_id: str = "T-100") -> dict[str, Any]:
    return {
        "type": "ticket.created",
        "id": event_id,
        "occurred_at": "2026-11-26T10:00:00Z",
        "ticket": {
            "id": ticket_id,
            "title": "Printer prints blank pages",
            "description": "Since this morning every page comes out blank.",
            "state": "submitted",
            "created_by": "customer",
        },
        "customer": {"id": "cust-7", "email": CUSTOMER, "name": "Ada Lovelace", "locale": "en"},
    }


@pytest.fixture(params=["in-process broker", pytest.param("redis broker", marks=pytest.mark.redis)])
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Parts]:
    """The whole gateway (API, SMTP server, worker) on loopback, with either broker."""
    broker: dramatiq.Broker = request.getfixturevalue(
        "stub_broker" if request.param == "in-process broker" else "redis_broker"
    )
    gw = build_gateway(settings_for(tmp_path), broker=broker)
    with Parts(gw, sweep_interval=0.5) as parts:
        yield parts


def api(parts: Parts) -> httpx.Client:
    return httpx.Client(
        base_url=f"http://127.0.0.1:{parts.api_port}", headers={"Authorization": f"Bearer {API_KEY}"}, timeout=10
    )


def test_ticket_email_answered_by_email_lands_once_on_the_thread(served: Parts) -> None:
    """A customer's Gmail-style reply to the ticket email shows on the thread as exactly the new text, once."""
    with api(served) as client:
        accepted = client.post("/v1/events", json=created_event())
        assert 202 == accepted.status_code, accepted.text

        email = wait_for(
            lambda: next((e for e in client.get("/v1/outbox").json()["emails"] if e["status"] == "sent"), None),
            what="the ticket email to be sent",
        )
        assert CUSTOMER == email["to"]
        original = parse(email["raw"])
        assert original["Reply-To"].startswith("reply+")
        assert "auto-generated" == original["Auto-Submitted"]

        reply = gmail_reply(original, sender=f"Ada Lovelace <{CUSTOMER}>", text="Thanks, it works again now.")
        with smtplib.SMTP("127.0.0.1", served.smtp_port) as smtp:
            smtp.sendmail(CUSTOMER, [original["Reply-To"]], reply)
            smtp.sendmail(CUSTOMER, [original["Reply-To"]], reply)  # an MTA retrying delivery

        def customer_replies() -> list[dict[str, Any]]:
            thread = client.get("/v1/tickets/T-100/thread").json()
            return [e for e in thread["entries"] if e["kind"] == "customer_reply"]

        replies = wait_for(customer_replies, what="the reply on the thread")
        wait_for(
            lambda: all(m.status in ("landed", "duplicate") for m in _inbound(served)), what="both deliveries processed"
        )
        assert ["Thanks, it works again now."] == [r["text"] for r in customer_replies()]
        assert "email" == replies[0]["channel"]


def _inbound(parts: Parts) -> list[Any]:
    stored = [parts.gw.inbound.get(pk) for pk in (1, 2)]
    return [m for m in stored if m is not None] if all(stored) else []


def test_forged_reply_address_is_refused_at_rcpt(served: Parts) -> None:
    """An address that looks like ours but carries a forged token gets 550 5.1.1 at RCPT."""
    with api(served) as client:
        client.post("/v1/events", json=created_event()).raise_for_status()
        email = wait_for(lambda: client.get("/v1/outbox").json()["emails"], what="the ticket email")
    good = parse(email[0]["raw"])["Reply-To"]
    local, domain = good.split("@")
    forged = local[:-1] + ("a" if local[-1] != "a" else "b") + "@" + domain
    with smtplib.SMTP("127.0.0.1", served.smtp_port) as smtp:
        smtp.ehlo()
        smtp.mail(CUSTOMER)
        code, text = smtp.rcpt(forged)
        assert 550 == code
        assert text.startswith(b"5.1.1")
        code, _ = smtp.rcpt("someone@" + domain)
        assert 550 == code
        assert 250 == smtp.rcpt(good)[0]


def test_same_event_id_twice_changes_nothing(served: Parts) -> None:
    """Repeating an event id answers as the first time and sends no second email."""
    with api(served) as client:
        first = client.post("/v1/events", json=created_event())
        again = client.post("/v1/events", json=created_event())
        assert 202 == first.status_code == again.status_code
        assert first.json() == again.json()
        emails = client.get("/v1/outbox").json()["emails"]
        assert 1 == len(emails)
        thread = client.get("/v1/tickets/T-100/thread").json()
        assert ["ticket_created"] == [e["kind"] for e in thread["entries"]]
