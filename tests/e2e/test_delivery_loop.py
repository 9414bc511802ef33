"""The delivery loop, end to end: each email leaves with its own bounce address, a real DSN sent
back over SMTP to that address suppresses its recipient (once, with evidence), the help desk and
the Messenger are told, and lifting the suppression lets the next email out. Forgeries suppress
nobody."""

from __future__ import annotations

import json
import smtplib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dramatiq
import httpx
import pytest

from gateway.app import build_gateway
from gateway.run import Parts
from tests.helpers import API_KEY, HelpDesk, settings_for, wait_for
from tests.integration.relay import ScriptedRelay, running_relay
from tests.services import free_port

ADA = "ada@customer.example.test"
GRACE = "grace@elsewhere.example.test"
SECRET = "webhook-secret-0123456789"


def created(ticket_id: str, email: str) -> dict[str, Any]:
    return {
        "type": "ticket.created", "id": f"evt-{ticket_id}", "occurred_at": "2026-11-26T10:00:00Z",
        "ticket": {"id": ticket_id, "title": "Printer prints blank pages", "state": "submitted",
                   "created_by": "customer"},
        "customer": {"id": "c-" + ticket_id, "email": email, "name": "Someone", "locale": "en"},
    }


def changed(ticket_id: str, old: str, new: str) -> dict[str, Any]:
    return {"type": "ticket.state_changed", "id": f"evt-{ticket_id}-{new}", "occurred_at": "2026-11-26T11:00:00Z",
            "ticket_id": ticket_id, "from": old, "to": new}


def dsn(bounce_address: str, failed: str, *, status: str = "5.1.1") -> bytes:
    """A Postfix-shaped delivery status notification for ``failed``, sent to ``bounce_address``."""
    return (
        "From: MAILER-DAEMON@mx.customer.example.test (Mail Delivery System)\r\n"
        f"To: {bounce_address}\r\nSubject: Undelivered Mail Returned to Sender\r\n"
        f"Message-ID: <dsn-{failed}-{status}@mx.customer.example.test>\r\nAuto-Submitted: auto-replied\r\n"
        'MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary="b1"\r\n\r\n'
        "--b1\r\nContent-Type: text/plain\r\n\r\n"
        f"<{failed}>: host mx1.customer.example.test said: 550 {status} User unknown\r\n\r\n"
        "--b1\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.customer.example.test\r\n\r\n"
        f"Final-Recipient: rfc822; {failed}\r\nAction: failed\r\nStatus: {status}\r\n"
        f"Diagnostic-Code: smtp; 550 {status} <{failed}>: Recipient address rejected: User unknown\r\n\r\n"
        "--b1--\r\n"
    ).encode()


@dataclass
class World:
    """The served gateway, its relay and the help desk's webhook receiver."""

    parts: Parts
    relay: ScriptedRelay
    helpdesk: HelpDesk

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=f"http://127.0.0.1:{self.parts.api_port}",
                            headers={"Authorization": f"Bearer {API_KEY}"}, timeout=10)

    def bounce_to_gateway(self, bounce_address: str, raw: bytes) -> tuple[int, bytes]:
        """Send ``raw`` over SMTP as a remote MTA would (null sender); the RCPT answer if refused, else DATA's."""
        with smtplib.SMTP("127.0.0.1", self.parts.smtp_port, timeout=10) as smtp:
            smtp.ehlo()
            smtp.mail("<>")
            code, text = smtp.rcpt(bounce_address)
            if code != 250:
                return code, text
            return smtp.data(raw)

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body in self.helpdesk.received]


@pytest.fixture
def world(database_url: str, tmp_path: Path, stub_broker: dramatiq.Broker) -> Iterator[World]:
    relay, helpdesk, port = ScriptedRelay(), HelpDesk(), free_port()
    settings = settings_for(tmp_path, database_url=database_url, smtp_relay_url=f"smtp://127.0.0.1:{port}",
                            helpdesk_webhook_url=helpdesk.url, helpdesk_webhook_secret=SECRET)
    try:
        with running_relay(relay, port):
            gw = build_gateway(settings, broker=stub_broker)
            with Parts(gw, sweep_interval=0.5) as parts:
                yield World(parts, relay, helpdesk)
    finally:
        helpdesk.close()


def outbox(client: httpx.Client, to: str) -> list[dict[str, Any]]:
    return [e for e in client.get("/v1/outbox", params={"limit": 500}).json()["emails"] if e["to"] == to]


def test_a_real_dsn_for_an_email_suppresses_its_recipient_and_everyone_is_told(world: World) -> None:
    """DSN over SMTP to the email's envelope sender: bounced and suppressed with evidence, the next
    email is recorded suppressed and not sent, one webhook, a quiet Messenger entry; lifted, mail flows."""
    with world.client() as client:
        assert 202 == client.post("/v1/events", json=created("T-1", ADA)).status_code
        first = wait_for(lambda: [e for e in outbox(client, ADA) if e["status"] == "sent"], what="the first email")
        (return_path,) = world.relay.senders
        assert return_path.startswith("bounces+") and return_path.endswith("@reply.example.test")

        code, answer = world.bounce_to_gateway(return_path, dsn(return_path, ADA))
        assert 250 == code, answer
        email = wait_for(lambda: next((e for e in outbox(client, ADA) if len(e["history"]) > 2), None),
                         what="the bounce in the email's ledger")
        assert ["queued", "sent", "bounced", "suppressed"] == [h["kind"] for h in email["history"]]
        assert email["history"][1]["detail"].startswith("250"), "the relay's own answer"
        assert "5.1.1" == email["history"][2]["status_code"]
        assert first[0]["id"] == email["id"]

        evidence = client.get(f"/v1/suppressions/{ADA}").json()
        assert ("hard", email["id"], "5.1.1") == (evidence["kind"], evidence["email_id"], evidence["status_code"])
        assert "User unknown" in evidence["diagnostic"]
        told = wait_for(lambda: world.events(), what="the help desk's webhook")
        assert [("ticket.email_bounced", "T-1", True)] == [(e["type"], e["ticket"]["id"], e["suppressed"])
                                                          for e in told]
        thread = client.get("/v1/tickets/T-1/thread").json()["entries"]
        assert "email_undeliverable" == thread[-1]["kind"]

        # The same DSN delivered twice (an MTA retrying) changes nothing more.
        world.bounce_to_gateway(return_path, dsn(return_path, ADA))
        assert 202 == client.post("/v1/events", json=changed("T-1", "submitted", "in_progress")).status_code
        held = wait_for(lambda: [e for e in outbox(client, ADA) if e["status"] == "suppressed"],
                        what="the next email to be held")
        assert 1 == len(held) and 1 == len(world.relay.received)
        told = wait_for(lambda: len(world.events()) == 2 and world.events(), what="the held email's webhook")
        assert ["ticket.email_bounced", "ticket.email_suppressed"] == [e["type"] for e in told]
        assert (held[0]["id"], "hard bounce") == (told[1]["email"]["id"], told[1]["suppression"]["reason"])

        assert 200 == client.delete(f"/v1/suppressions/{ADA}").status_code
        assert 202 == client.post("/v1/events", json=changed("T-1", "in_progress", "resolved")).status_code
        wait_for(lambda: len(world.relay.received) == 2, what="the email after the suppression was lifted")


def test_forged_bounces_suppress_nobody(world: World) -> None:
    """A DSN to a valid bounce address naming someone else, one to a forged bounce address (550
    5.1.1 at RCPT), and the same over POST /v1/inbound: Grace still gets her next email."""
    with world.client() as client:
        for ticket_id, email in (("T-ADA", ADA), ("T-GRACE", GRACE)):
            assert 202 == client.post("/v1/events", json=created(ticket_id, email)).status_code
        wait_for(lambda: len(world.relay.received) == 2, what="both first emails")
        ada_return_path = next(s for s, raw in zip(world.relay.senders, world.relay.received, strict=True)
                               if ADA.encode() in raw)

        code, _ = world.bounce_to_gateway(ada_return_path, dsn(ada_return_path, GRACE))
        assert 250 == code
        local, domain = ada_return_path.split("@")
        forged = local[:-1] + ("a" if local[-1] != "a" else "b") + "@" + domain
        code, text = world.bounce_to_gateway(forged, dsn(forged, GRACE))
        assert (550, True) == (code, text.startswith(b"5.1.1"))
        over_http = client.post("/v1/inbound", params={"recipient": ada_return_path, "mail_from": "<>"},
                                content=dsn(ada_return_path, GRACE, status="5.1.2"),
                                headers={"Content-Type": "message/rfc822"})
        assert 202 == over_http.status_code, over_http.text
        forged_http = client.post("/v1/inbound", params={"recipient": forged},
                                  content=dsn(forged, GRACE), headers={"Content-Type": "message/rfc822"})
        assert 422 == forged_http.status_code

        def processed() -> list[Any]:
            stored = [world.parts.gw.inbound.get(pk) for pk in (1, 2)]
            return [m for m in stored if m is not None and m.status != "received"]

        outcomes = wait_for(lambda: len(processed()) == 2 and processed(), what="both bounces processed")
        assert all("not believed" in (m.detail or "") for m in outcomes), [m.detail for m in outcomes]
        assert [] == client.get("/v1/suppressions").json()["suppressions"]
        assert 202 == client.post("/v1/events", json=changed("T-GRACE", "submitted", "in_progress")).status_code
        wait_for(lambda: len([e for e in outbox(client, GRACE) if e["status"] == "sent"]) == 2,
                 what="Grace's next email to be sent")
        assert [] == world.events(), "nothing to tell the help desk"


def test_the_relays_own_refusal_suppresses_and_tells_the_help_desk(world: World) -> None:
    """A 550 5.1.1 from the relay at delivery time: the email fails, the address is suppressed with
    the relay's words as evidence, and the help desk gets one ticket.email_bounced (kind hard)."""
    world.relay.rcpt_answers.append("550 5.1.1 <ada@customer.example.test>: no such user here")
    with world.client() as client:
        assert 202 == client.post("/v1/events", json=created("T-1", ADA)).status_code
        failed = wait_for(lambda: [e for e in outbox(client, ADA) if e["status"] == "failed"], what="the refusal")
        assert ["queued", "failed", "suppressed"] == [h["kind"] for h in failed[0]["history"]]
        evidence = client.get(f"/v1/suppressions/{ADA}").json()
        assert ("relay", failed[0]["id"], "5.1.1") == (evidence["kind"], evidence["email_id"], evidence["status_code"])
        told = wait_for(lambda: world.events(), what="the help desk's webhook")
        assert [("ticket.email_bounced", "hard", "relay", True)] == [
            (e["type"], e["bounce"]["kind"], e["bounce"]["recognised_by"], e["suppressed"]) for e in told]
