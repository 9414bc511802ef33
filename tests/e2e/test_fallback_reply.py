"""Over real SMTP: a reply whose extraction rules leave nothing, but which has unquoted words of the
customer's, lands with the fallback rule and the help desk is told which rule cut it."""

from __future__ import annotations

import json
import smtplib
from pathlib import Path

import dramatiq

from gateway.app import build_gateway
from gateway.run import Parts
from tests.helpers import CUSTOMER, HelpDesk, open_ticket, settings_for, wait_for

CORPUS = Path(__file__).parent.parent / "corpus" / "inbound"


def test_words_the_rules_would_cut_whole_land_with_the_fallback_rule(tmp_path: Path,
                                                                      stub_broker: dramatiq.Broker) -> None:
    """A Swedish reply written right above an unquoted attribution: landed, rule ``unquoted_fallback``."""
    helpdesk = HelpDesk()
    try:
        settings = settings_for(tmp_path, helpdesk_webhook_url=helpdesk.url, helpdesk_webhook_secret="s" * 24)
        gw = build_gateway(settings, broker=stub_broker)
        ticket = open_ticket(gw)
        reply_to = gw.keyring.address_for(ticket.key, CUSTOMER)
        sent = gw.outbox.recent(ticket_key=ticket.key)[0].message_id.strip("<>")
        raw = (CORPUS / "fallback_unquoted.eml").read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        for key, value in (("CUSTOMER", CUSTOMER), ("REPLY_TO", reply_to), ("SENT_ID", sent)):
            raw = raw.replace(b"{{" + key.encode() + b"}}", value.encode())
        with Parts(gw, parts=("smtp", "worker"), sweep_interval=0.5) as parts:
            with smtplib.SMTP("127.0.0.1", parts.smtp_port) as smtp:
                smtp.sendmail(CUSTOMER, [reply_to], raw)
            (_, body) = wait_for(lambda: helpdesk.received and helpdesk.received[0], what="the webhook")
        payload = json.loads(body)
        assert "unquoted_fallback" == payload["reply"]["rule"]
        assert payload["reply"]["text"].startswith("På måndag tar jag med skrivaren till er")
    finally:
        helpdesk.close()
