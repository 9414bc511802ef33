"""``GET /v1/inbound/{id}/attachments/{n}`` and the version 2 reply webhook, on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dramatiq
import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from gateway.api import create_api
from gateway.app import Gateway, build_gateway
from gateway.models import InboundStatus, RawMessage
from gateway.store.tables import webhook_deliveries
from tests.helpers import API_KEY, CUSTOMER, open_ticket, settings_for
from tests.messenger import key_for

CORPUS = Path(__file__).parent.parent / "corpus" / "inbound"
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


@dataclass
class Landed:
    """A gateway whose ticket T-1 (customer ``c-<CUSTOMER>``) has the reply of attachment.eml on it."""

    gw: Gateway
    client: TestClient
    inbound_id: int

    def get(self, n: int, key: str = API_KEY, pk: int | None = None) -> httpx.Response:
        return self.client.get(f"/v1/inbound/{self.inbound_id if pk is None else pk}/attachments/{n}",
                               headers={"Authorization": f"Bearer {key}"})


def deliver(gw: Gateway, raw: bytes) -> int:
    ticket = gw.tickets.get("T-1")
    assert ticket is not None
    raw = re.sub(rb"(?<!\r)\n", b"\r\n", raw)
    raw = raw.replace(b"{{CUSTOMER}}", CUSTOMER.encode())
    raw = raw.replace(b"{{REPLY_TO}}", gw.keyring.address_for(ticket.key, CUSTOMER).encode())
    pk = gw.inbound.save_many([RawMessage(CUSTOMER, (), raw)], now=gw.clock())[0]
    gw.pipeline.process(pk)
    return pk


@pytest.fixture
def landed(database_url: str, tmp_path: Path, stub_broker: dramatiq.Broker) -> Iterator[Landed]:
    settings = settings_for(tmp_path, database_url=database_url, helpdesk_webhook_url="http://127.0.0.1:9/hook",
                            helpdesk_webhook_secret="webhook-secret-0123456789")
    gw = build_gateway(settings, broker=stub_broker)
    open_ticket(gw)
    open_ticket(gw, "T-2", email="grace@other.example.test")
    pk = deliver(gw, (CORPUS / "attachment.eml").read_bytes())
    stored = gw.inbound.get(pk)
    assert stored is not None and InboundStatus.LANDED == stored.status, stored
    with TestClient(create_api(gw)) as client:
        yield Landed(gw, client, pk)


def test_the_help_desk_downloads_each_attachment_from_the_raw_message(landed: Landed) -> None:
    """Each attachment's bytes as sent, typed by its bytes, as a download that is never sniffed."""
    image, pdf = landed.get(0), landed.get(1)
    assert (200, PNG, "image/png") == (image.status_code, image.content, image.headers["content-type"])
    assert (200, b"%PDF-1.4", "application/pdf") == (pdf.status_code, pdf.content[:8], pdf.headers["content-type"])
    assert "attachment; filename=\"printer-log.pdf\"; filename*=UTF-8''printer-log.pdf" == (
        pdf.headers["content-disposition"])
    assert ("nosniff", "nosniff") == (image.headers["x-content-type-options"], pdf.headers["x-content-type-options"])
    assert "sandbox" in pdf.headers["content-security-policy"]


def test_the_customers_messenger_key_reads_them_and_nobody_elses_does(landed: Landed) -> None:
    """The customer's Messenger key downloads; another customer's gets 404 exactly as a missing one."""
    mine = key_for("c-" + CUSTOMER, landed.gw.messenger_secret)
    other = key_for("c-grace@other.example.test", landed.gw.messenger_secret)
    assert (200, PNG) == (landed.get(0, mine).status_code, landed.get(0, mine).content)
    refused, missing = landed.get(0, other), landed.get(0, other, pk=landed.inbound_id + 100)
    assert (404, 404) == (refused.status_code, missing.status_code)
    assert refused.json()["error"].replace(str(landed.inbound_id), "N") == (
        missing.json()["error"].replace(str(landed.inbound_id + 100), "N"))
    as_url = landed.client.get(f"/v1/inbound/{landed.inbound_id}/attachments/1", params={"access_token": mine})
    assert 200 == as_url.status_code, "a Messenger key may ride in the URL (an <img> cannot send headers)"


def test_no_such_attachment_or_message_is_404_and_no_key_is_401(landed: Landed) -> None:
    """Past the last attachment, an unknown message: 404; no key: 401."""
    assert (404, 404) == (landed.get(2).status_code, landed.get(0, pk=landed.inbound_id + 100).status_code)
    assert 401 == landed.client.get(f"/v1/inbound/{landed.inbound_id}/attachments/0").status_code


def test_a_message_that_did_not_land_is_not_the_customers(landed: Landed) -> None:
    """A quarantined message (someone else writing as the customer) is the help desk's alone."""
    raw = (CORPUS / "attachment.eml").read_bytes().replace(b"{{CUSTOMER}}", b"mallory@evil.example.test")
    pk = deliver(landed.gw, raw.replace(b"with-attachment-1", b"with-attachment-2"))
    stored = landed.gw.inbound.get(pk)
    assert stored is not None and InboundStatus.LANDED != stored.status
    mine = key_for("c-" + CUSTOMER, landed.gw.messenger_secret)
    assert (200, 404) == (landed.get(0, pk=pk).status_code, landed.get(0, mine, pk=pk).status_code)


def test_a_declared_image_that_is_not_one_is_served_as_bytes(landed: Landed) -> None:
    """An "image/png" whose bytes are HTML is served as application/octet-stream."""
    raw = (CORPUS / "attachment.eml").read_bytes().replace(b"with-attachment-1", b"with-attachment-3")
    fake = base64.b64encode(b"<html><script>alert(document.cookie)</script></html>")
    raw = re.sub(rb"iVBOR\S+", fake, raw)
    answer = landed.get(0, pk=deliver(landed.gw, raw))
    assert ("application/octet-stream", b"<html><script>") == (answer.headers["content-type"], answer.content[:14])


def test_the_webhook_carries_html_with_inline_images_and_attachment_urls(landed: Landed) -> None:
    """Version 2: text, sanitised HTML (cid: resolved), signature, trimmed, rule and each attachment's URL."""
    with landed.gw.db.read() as conn:
        body = conn.execute(select(webhook_deliveries.c.payload)).scalar_one()
    payload = json.loads(body)
    reply = payload["reply"]
    base = f"/v1/inbound/{landed.inbound_id}/attachments"
    assert 2 == payload["version"]
    assert "Here is a photo of the page and the printer log." == reply["text"]
    assert (f'<p>Here is a photo of the page and the printer log.</p><p><img src="{base}/0"></p>') == reply["html"]
    assert ("", "", "no_quote") == (reply["signature"], reply["trimmed"], reply["rule"])
    assert [(f"{base}/0", "page.png", True), (f"{base}/1", "printer-log.pdf", False)] == [
        (a["url"], a["filename"], a["inline"]) for a in reply["attachments"]]


def test_the_thread_lists_the_replys_attachments_with_urls_the_messenger_key_reads(landed: Landed) -> None:
    """The customer reply's thread entry carries each attachment and its URL; other entries carry none."""
    mine = key_for("c-" + CUSTOMER, landed.gw.messenger_secret)
    thread = landed.client.get("/v1/tickets/T-1/thread", headers={"Authorization": f"Bearer {mine}"}).json()
    reply, = (e for e in thread["entries"] if e["kind"] == "customer_reply")
    base = f"/v1/inbound/{landed.inbound_id}/attachments"
    assert [
        {"filename": "page.png", "content_type": "image/png", "size": 70, "inline": True, "url": f"{base}/0"},
        {"filename": "printer-log.pdf", "content_type": "application/pdf", "size": 82, "inline": False,
         "url": f"{base}/1"},
    ] == reply["attachments"]
    assert all("attachments" not in e for e in thread["entries"] if e["kind"] != "customer_reply")
    fetched = landed.client.get(reply["attachments"][0]["url"], params={"access_token": mine})
    assert PNG == fetched.content
