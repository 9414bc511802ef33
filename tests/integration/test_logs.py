"""One JSON log line per thing an operator cares about, with the ids to follow it (captured)."""

from __future__ import annotations

import io
import json
import logging
import smtplib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dramatiq
import httpx
import pytest

from gateway.app import build_gateway
from gateway.logs import configure
from gateway.run import Parts
from tests.helpers import API_KEY, CUSTOMER, HelpDesk, gmail_reply, parse, settings_for, wait_for


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = configure(level="info", fmt="json", stream=stream)
    yield stream
    logging.getLogger().removeHandler(handler)


def events(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def named(stream: io.StringIO, name: str) -> list[dict[str, Any]]:
    return [e for e in events(stream) if e["event"] == name]


def test_each_outcome_is_one_json_line_with_its_ids(lines: io.StringIO, tmp_path: Path,
                                                     stub_broker: dramatiq.Broker) -> None:
    """An event applied, an email sent, an SMTP refusal, a reply landed (with its rule), its webhook,
    a quarantine: each a JSON line naming its ids; no line carries the customer's words."""
    helpdesk = HelpDesk()
    try:
        settings = settings_for(tmp_path, helpdesk_webhook_url=helpdesk.url, helpdesk_webhook_secret="s" * 20)
        gw = build_gateway(settings, broker=stub_broker)
        with Parts(gw, sweep_interval=0.5) as parts, httpx.Client(
            base_url=f"http://127.0.0.1:{parts.api_port}", headers={"Authorization": f"Bearer {API_KEY}"}
        ) as client:
            client.post("/v1/events", json={
                "type": "ticket.created", "id": "evt-1", "occurred_at": "2026-11-26T10:00:00Z",
                "ticket": {"id": "T-1", "title": "Printer", "state": "submitted", "created_by": "customer"},
                "customer": {"id": "c-1", "email": CUSTOMER, "name": "Ada", "locale": "en"},
            }).raise_for_status()
            sent = wait_for(lambda: named(lines, "email.sent"), what="the email.sent line")
            original = parse(client.get("/v1/outbox").json()["emails"][0]["raw"])
            with smtplib.SMTP("127.0.0.1", parts.smtp_port) as smtp:
                smtp.ehlo()
                smtp.mail(CUSTOMER)
                assert 550 == smtp.rcpt("reply+forged@reply.example.test")[0]
                smtp.rset()
                smtp.sendmail(CUSTOMER, [original["Reply-To"]],
                              gmail_reply(original, sender=CUSTOMER, text="Secret words of the customer"))
                smtp.sendmail("mallory@evil.example", [original["Reply-To"]],
                              gmail_reply(original, sender="mallory@evil.example", text="Let me in"))
            landed = wait_for(lambda: named(lines, "inbound.landed"), what="the landed line")
            quarantined = wait_for(lambda: named(lines, "inbound.quarantined"), what="the quarantine line")
            delivered = wait_for(lambda: named(lines, "webhook.delivered"), what="the webhook line")
    finally:
        helpdesk.close()
    (applied,) = named(lines, "event.applied")
    assert ("ticket.created", "evt-1", "T-1", 1) == (applied["type"], applied["event_id"], applied["ticket"],
                                                     applied["emails"])
    assert {"email_id", "reply"} <= set(sent[0]) and "info" == sent[0]["level"]
    (refused,) = named(lines, "smtp.refused")
    assert ("550 5.1.1", "UnknownRecipient", "reply+forged@reply.example.test") == (
        refused["code"], refused["reason"], refused["rcpt"])
    assert refused["peer"].startswith("127.0.0.1:")
    assert {"inbound_id", "message_id", "ticket_key", "threaded_by", "rule"} <= set(landed[0])
    assert "SenderNotCustomer" in quarantined[0]["detail"]
    assert {"webhook_id", "attempts"} <= set(delivered[0])
    assert "Secret words" not in json.dumps(events(lines)), "no customer message body at info level"


def test_unseen_decisions_bounces_and_suppressions_are_logged(lines: io.StringIO, tmp_path: Path,
                                                              stub_broker: dramatiq.Broker) -> None:
    """The unseen check logs its decision per ticket; a bounce its decision; a suppression its address and why."""
    from datetime import timedelta

    from gateway.models import TeammateReply, TicketReplied
    from inbound.bounce_report import BounceKind, BounceReport, FailedRecipient
    from tests.helpers import NOW, open_ticket

    now = [NOW]
    gw = build_gateway(settings_for(tmp_path), broker=stub_broker, clock=lambda: now[0])
    ticket = open_ticket(gw)
    reply = TeammateReply(id="r-1", author_name="Grace", text="Try a new cartridge.", html=None, created_at=NOW)
    gw.events.ticket_reply(TicketReplied(event_id="evt-r", occurred_at=NOW, ticket_id="T-1", reply=reply), now=NOW)
    now[0] = NOW + timedelta(seconds=181)
    gw.unseen.check(ticket.key)
    (checked,) = named(lines, "unseen.checked")
    assert (ticket.key, 1) == (checked["ticket_key"], checked["replies_emailed"])
    email = gw.outbox.recent(ticket_key=ticket.key)[0]
    failed = FailedRecipient(CUSTOMER, BounceKind.HARD, "5.1.1", "User unknown")
    report = BounceReport(BounceKind.HARD, (failed,), "dsn")
    bounce_pk = gw.inbound.save_raw(mail_from="<>", rcpt_to=[gw.keyring.bounce_address_for(email.pk)],
                                    raw=b"Subject: Undelivered\r\n\r\nUser unknown\r\n", now=now[0])
    gw.delivery.received(bounce_pk, email.pk, report)
    (bounce,) = named(lines, "bounce.received")
    assert (email.pk, "hard") == (bounce["email_id"], bounce["kind"])
    (suppressed,) = named(lines, "address.suppressed")
    assert (CUSTOMER, "hard bounce", "warning") == (suppressed["address"], suppressed["reason"], suppressed["level"])
