"""Outbound end to end on the served gateway: events in over HTTP, threaded emails out through a real relay."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dramatiq
import httpx
import pytest

from gateway.app import build_gateway
from gateway.run import Parts
from tests.helpers import API_KEY, parse, settings_for, wait_for
from tests.integration.relay import ScriptedRelay, running_relay
from tests.services import free_port

CUSTOMER = "zoe@customer.example.test"


@pytest.fixture
def relayed(tmp_path: Path, stub_broker: dramatiq.Broker) -> Iterator[tuple[Parts, ScriptedRelay]]:
    """The served gateway sending through a real relay on loopback."""
    relay, port = ScriptedRelay(), free_port()
    with running_relay(relay, port):
        gw = build_gateway(settings_for(tmp_path, smtp_relay_url=f"smtp://127.0.0.1:{port}"), broker=stub_broker)
        with Parts(gw, sweep_interval=0.5) as parts:
            yield parts, relay


def event(kind: str, event_id: str, **fields: Any) -> dict[str, Any]:
    return {"type": kind, "id": event_id, "occurred_at": "2026-11-26T10:00:00Z", **fields}


def test_ticket_emails_reach_the_relay_as_one_thread(relayed: tuple[Parts, ScriptedRelay]) -> None:
    """Created, a reply (already overdue for the unseen check) and two state changes: four emails in one thread,
    in German, to a non-ASCII name."""
    parts, relay = relayed
    with httpx.Client(base_url=f"http://127.0.0.1:{parts.api_port}", headers={"Authorization": f"Bearer {API_KEY}"},
                      timeout=10) as client:
        client.post("/v1/events", json=event(
            "ticket.created", "e1",
            ticket={"id": "T-9", "title": "Drucker druckt nicht", "state": "submitted", "created_by": "teammate"},
            customer={"id": "c-9", "email": CUSTOMER, "name": "Zoë Ünal", "locale": "de-AT"},
        )).raise_for_status()
        client.post("/v1/events", json=event(
            "ticket.reply", "e2", ticket_id="T-9", reply={"id": "r-1", "author": {"name": "Grace"}, "text": "Hallo!"},
        )).raise_for_status()
        client.post("/v1/events", json=event("ticket.state_changed", "e3", ticket_id="T-9",
                                             **{"from": "submitted", "to": "resolved"})).raise_for_status()
        client.post("/v1/events", json=event("ticket.state_changed", "e4", ticket_id="T-9",
                                             **{"from": "resolved", "to": "closed"})).raise_for_status()
        emails = wait_for(lambda: len(relay.received) >= 4 and relay.received, what="four emails at the relay")

        def all_sent() -> list[dict[str, Any]] | None:
            listed: list[dict[str, Any]] = client.get("/v1/outbox").json()["emails"]
            return listed if len(listed) == 4 and all(e["status"] == "sent" for e in listed) else None

        outbox = wait_for(all_sent, what="all four marked sent")
    messages = sorted((parse(raw) for raw in emails), key=lambda m: 0 if m["In-Reply-To"] is None else 1)
    root = messages[0]
    assert all(root["Message-ID"] == m["In-Reply-To"] == m["References"] for m in messages[1:])
    assert {"[#T-9] Drucker druckt nicht"} == {str(m["Subject"]) for m in messages}
    assert "=?utf-8?" in root["To"]
    texts = [m.get_payload()[0].get_payload(decode=True).decode() for m in messages]
    assert any("jetzt „Gelöst“" in t for t in texts) and any("jetzt „Geschlossen“" in t for t in texts)
    assert [("sent", 1)] * 4 == [(e["status"], e["attempts"]) for e in outbox]
    assert ["state_changed", "state_changed", "teammate_reply", "ticket_created"] == sorted(e["kind"] for e in outbox)
