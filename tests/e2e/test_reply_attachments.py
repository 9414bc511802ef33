"""End to end over real SMTP: a Gmail HTML reply with an inline screenshot and a PDF reaches the help desk whole."""

from __future__ import annotations

import json
import smtplib
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dramatiq
import httpx
import pytest

from gateway.app import build_gateway
from gateway.run import Parts
from tests.helpers import API_KEY, HelpDesk, gmail_reply_with_attachments, parse, settings_for, wait_for

CUSTOMER = "ada@customer.example.test"
SIGNATURE = "Ada Lovelace\nAnalytical Engines Ltd"


def png(width: int, height: int) -> bytes:
    """A real PNG of ``width`` x ``height`` grey pixels (a stand-in screenshot)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


SCREENSHOT = png(64, 48)
PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n" + bytes(range(256)) * 8


def created(ticket_id: str, customer_id: str, email: str) -> dict[str, Any]:
    return {
        "type": "ticket.created", "id": "evt-" + ticket_id, "occurred_at": "2026-11-26T10:00:00Z",
        "ticket": {"id": ticket_id, "title": "Printer prints blank pages", "description": "Every page is blank.",
                   "state": "submitted", "created_by": "customer"},
        "customer": {"id": customer_id, "email": email, "name": "Ada Lovelace", "locale": "en"},
    }


@pytest.fixture
def helpdesk() -> Iterator[HelpDesk]:
    desk = HelpDesk()
    yield desk
    desk.close()


@pytest.fixture
def served(tmp_path: Path, stub_broker: dramatiq.Broker, helpdesk: HelpDesk) -> Iterator[Parts]:
    """The whole gateway (API, SMTP server, worker) on loopback, posting webhooks to ``helpdesk``."""
    settings = settings_for(tmp_path, helpdesk_webhook_url=helpdesk.url,
                            helpdesk_webhook_secret="webhook-secret-0123456789")
    with Parts(build_gateway(settings, broker=stub_broker), sweep_interval=0.5) as parts:
        yield parts


def test_a_gmail_reply_with_a_screenshot_and_a_pdf_reaches_the_help_desk_whole(
    served: Parts, helpdesk: HelpDesk
) -> None:
    """Both files download byte for byte with the help desk's and the customer's key, not another's; the
    webhook carries text, HTML with the screenshot, signature, the trimmed history and the URLs."""
    with httpx.Client(base_url=f"http://127.0.0.1:{served.api_port}", timeout=10,
                      headers={"Authorization": f"Bearer {API_KEY}"}) as desk:
        assert 202 == desk.post("/v1/events", json=created("T-100", "cust-7", CUSTOMER)).status_code
        assert 202 == desk.post("/v1/events", json=created("T-200", "cust-8", "bob@other.example.test")).status_code
        email = wait_for(lambda: next((e for e in desk.get("/v1/outbox").json()["emails"]
                                       if e["status"] == "sent" and e["to"] == CUSTOMER), None),
                         what="the ticket email")
        original = parse(email["raw"])
        reply = gmail_reply_with_attachments(original, sender=f"Ada Lovelace <{CUSTOMER}>",
                                             text="Here is what the printer shows.", signature=SIGNATURE,
                                             image=SCREENSHOT, pdf=PDF)
        with smtplib.SMTP("127.0.0.1", served.smtp_port) as smtp:
            smtp.sendmail(CUSTOMER, [original["Reply-To"]], reply)

        wait_for(lambda: any(json.loads(b)["type"] == "ticket.customer_reply" for _, b in helpdesk.received),
                 what="the reply webhook")
        payload = next(p for p in (json.loads(b) for _, b in helpdesk.received)
                       if p["type"] == "ticket.customer_reply")
        body = payload["reply"]
        image_url, pdf_url = (a["url"] for a in body["attachments"])
        assert (2, "T-100", "Here is what the printer shows.") == (payload["version"], payload["ticket"]["id"],
                                                                   body["text"])
        assert f'<img src="{image_url}" alt="screenshot.png" width="544" height="306">' in body["html"]
        assert "gmail_quote" not in body["html"] and "Every page is blank." not in body["html"]
        assert "--\n" + SIGNATURE == body["signature"], "the signature as the extractor split it, delimiter and all"
        assert "Every page is blank." in body["trimmed"]
        assert "gmail_quote_html" == body["rule"]
        assert [("screenshot.png", "image/png", True), ("printer-log.pdf", "application/pdf", False)] == [
            (a["filename"], a["content_type"], a["inline"]) for a in body["attachments"]]

        mine = desk.post("/v1/messenger-tokens", json={"customer_id": "cust-7"}).json()["token"]
        other = desk.post("/v1/messenger-tokens", json={"customer_id": "cust-8"}).json()["token"]
        for key in (API_KEY, mine):
            as_key = {"Authorization": f"Bearer {key}"}
            image, document = desk.get(image_url, headers=as_key), desk.get(pdf_url, headers=as_key)
            assert (200, SCREENSHOT, "image/png") == (image.status_code, image.content, image.headers["content-type"])
            assert (200, PDF, "application/pdf") == (document.status_code, document.content,
                                                     document.headers["content-type"])
            assert "nosniff" == document.headers["x-content-type-options"]
            assert document.headers["content-disposition"].startswith("attachment;")
        refused = [desk.get(url, headers={"Authorization": f"Bearer {other}"}) for url in (image_url, pdf_url)]
        assert [404, 404] == [r.status_code for r in refused]

        thread = desk.get("/v1/tickets/T-100/thread", headers={"Authorization": f"Bearer {mine}"}).json()
        entry = next(e for e in thread["entries"] if e["kind"] == "customer_reply")
        assert [image_url, pdf_url] == [a["url"] for a in entry["attachments"]]
