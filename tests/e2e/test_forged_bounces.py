"""A bounce-shaped message sent by a customer suppresses nobody: the address it names still gets its emails.

Until bounces come back to signed per-email return paths (VERP), nothing that arrives at a reply
address or over ``POST /v1/inbound`` is evidence that an address failed: anyone can write a
``multipart/report`` or an ``X-Failed-Recipients`` header. Only a relay's own 5xx suppresses.
"""

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
from tests.helpers import API_KEY, parse, settings_for, wait_for

ADA = "ada@customer.example.test"
STRANGER = "grace@elsewhere.example.test"


def created(ticket_id: str, email: str) -> dict[str, Any]:
    return {
        "type": "ticket.created", "id": f"evt-{ticket_id}", "occurred_at": "2026-11-26T10:00:00Z",
        "ticket": {"id": ticket_id, "title": "Printer prints blank pages", "state": "submitted",
                   "created_by": "customer"},
        "customer": {"id": "c-" + ticket_id, "email": email, "name": "Someone", "locale": "en"},
    }


def forged_dsn(reply_to: str, victim: str) -> bytes:
    """A hand-made RFC 3464 report, written by Ada, that claims ``victim`` does not exist."""
    return (
        f"From: Mail Delivery System <MAILER-DAEMON@customer.example.test>\r\nTo: {reply_to}\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <forged-dsn@customer.example.test>\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b1"\r\n\r\n'
        "--b1\r\nContent-Type: text/plain\r\n\r\n"
        f"<{victim}>: host mx said: 550 5.1.1 User unknown\r\n\r\n"
        "--b1\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.customer.example.test\r\n\r\n"
        f"Final-Recipient: rfc822; {victim}\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 User unknown\r\n\r\n--b1--\r\n"
    ).encode()


def failed_recipients_mail(reply_to: str, victim: str) -> bytes:
    """A plain mail from Ada carrying Exim's ``X-Failed-Recipients`` header naming ``victim``."""
    return (
        f"From: {ADA}\r\nTo: {reply_to}\r\nSubject: Mail delivery failed\r\n"
        f"X-Failed-Recipients: {victim}\r\nMessage-ID: <forged-xfr@customer.example.test>\r\n\r\n"
        "This message was created automatically by mail delivery software.\r\n"
    ).encode()


@pytest.fixture
def served(database_url: str, tmp_path: Path, stub_broker: dramatiq.Broker) -> Iterator[Parts]:
    gw = build_gateway(settings_for(tmp_path, database_url=database_url), broker=stub_broker)
    with Parts(gw, sweep_interval=0.5) as parts:
        yield parts


def emails_to(client: httpx.Client, address: str) -> list[dict[str, Any]]:
    return [e for e in client.get("/v1/outbox", params={"limit": 500}).json()["emails"] if e["to"] == address]


def test_forged_bounces_to_a_reply_address_suppress_nobody(served: Parts) -> None:
    """A forged DSN and an X-Failed-Recipients mail (over SMTP and over HTTP) leave the named address emailed."""
    client = httpx.Client(base_url=f"http://127.0.0.1:{served.api_port}",
                          headers={"Authorization": f"Bearer {API_KEY}"}, timeout=10)
    with client:
        for ticket_id, email in (("T-ADA", ADA), ("T-GRACE", STRANGER)):
            assert 202 == client.post("/v1/events", json=created(ticket_id, email)).status_code
        first = wait_for(lambda: [e for e in emails_to(client, ADA) if e["status"] == "sent"], what="Ada's email")
        reply_to = parse(first[0]["raw"])["Reply-To"]

        with smtplib.SMTP("127.0.0.1", served.smtp_port) as smtp:
            smtp.sendmail("", [reply_to], forged_dsn(reply_to, STRANGER))
            smtp.sendmail(ADA, [reply_to], failed_recipients_mail(reply_to, STRANGER))
        over_http = client.post(
            "/v1/inbound", params={"recipient": reply_to, "mail_from": "<>"},
            content=forged_dsn(reply_to, STRANGER).replace(b"forged-dsn@", b"forged-dsn-http@"),
            headers={"Content-Type": "message/rfc822"},
        )
        assert 202 == over_http.status_code, over_http.text

        def processed() -> list[Any]:
            stored = [served.gw.inbound.get(pk) for pk in (1, 2, 3)]
            done = [m for m in stored if m is not None and m.status != "received"]
            return done if len(done) == 3 else []

        outcomes = wait_for(processed, what="the three forged bounces to be processed")
        assert ["bounce", "bounce", "bounce"] == [m.status for m in outcomes]
        assert all(STRANGER in (m.detail or "") and "suppresses nobody" in (m.detail or "") for m in outcomes)

        changed = {"type": "ticket.state_changed", "id": "evt-grace-progress", "occurred_at": "2026-11-26T11:00:00Z",
                   "ticket_id": "T-GRACE", "from": "submitted", "to": "in_progress"}
        assert 202 == client.post("/v1/events", json=changed).status_code
        wait_for(lambda: len([e for e in emails_to(client, STRANGER) if e["status"] == "sent"]) == 2,
                 what="the stranger's next email to be sent")
        assert [] == [e for e in emails_to(client, STRANGER) if e["status"] == "suppressed"]

        thread = client.get("/v1/tickets/T-ADA/thread").json()["entries"]
        assert [] == [e for e in thread if e["kind"] == "customer_reply"]
