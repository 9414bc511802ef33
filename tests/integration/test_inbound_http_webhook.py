"""POST /v1/inbound, the quarantine (API and CLI) and the signed help-desk webhook, on the served gateway."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import dramatiq
import httpx
import pytest

from gateway.app import build_gateway
from gateway.cli import main
from gateway.models import WebhookStatus
from gateway.run import Parts
from inbound.webhook import HttpPoster
from tests.helpers import API_KEY, CUSTOMER, NOW, HelpDesk, open_ticket, settings_for, wait_for

SECRET = "webhook-secret-0123456789"


@pytest.fixture
def helpdesk() -> Iterator[HelpDesk]:
    desk = HelpDesk()
    yield desk
    desk.close()


@pytest.fixture
def served(tmp_path: Path, stub_broker: dramatiq.Broker, helpdesk: HelpDesk) -> Iterator[Parts]:
    settings = settings_for(tmp_path, helpdesk_webhook_url=helpdesk.url, helpdesk_webhook_secret=SECRET)
    gw = build_gateway(settings, broker=stub_broker)
    open_ticket(gw)
    with Parts(gw, parts=("api", "worker"), sweep_interval=0.2) as parts:
        yield parts


def client(parts: Parts) -> httpx.Client:
    return httpx.Client(base_url=f"http://127.0.0.1:{parts.api_port}",
                        headers={"Authorization": f"Bearer {API_KEY}"}, timeout=10)


def reply(parts: Parts, sender: str = CUSTOMER, text: str = "Thanks, all fixed.") -> bytes:
    ticket = parts.gw.tickets.get("T-1")
    assert ticket is not None
    to = parts.gw.keyring.address_for(ticket.key, CUSTOMER)
    return (f"From: Ada <{sender}>\r\nTo: {to}\r\nSubject: Re: Printer\r\nMessage-ID: <{hash(text)}@c.test>\r\n"
            f"\r\n{text}\r\n").encode()


RFC822 = {"Content-Type": "message/rfc822"}


def test_http_inbound_lands_and_the_help_desk_gets_a_signed_webhook(served: Parts, helpdesk: HelpDesk) -> None:
    """A raw message POSTed as message/rfc822 is stored (202 with its id), lands, and the help desk gets signed JSON."""
    with client(served) as api:
        answer = api.post("/v1/inbound", content=reply(served), headers=RFC822)
    assert 202 == answer.status_code, answer.text
    wait_for(lambda: helpdesk.received, what="the webhook call")
    headers, body = helpdesk.received[0]
    expected = hmac.new(SECRET.encode(), headers["x-web2chat-timestamp"].encode() + b"." + body, hashlib.sha256)
    assert "sha256=" + expected.hexdigest() == headers["x-web2chat-signature"]
    payload = json.loads(body)
    assert ("T-1", "Thanks, all fixed.", "token", answer.json()["id"]) == (
        payload["ticket"]["id"], payload["reply"]["text"], payload["reply"]["threaded_by"],
        payload["reply"]["inbound_id"])


def test_http_inbound_refuses_what_smtp_refuses(served: Parts) -> None:
    """Wrong type 415, too big 413, a recipient that is not a reply address 422 naming it; nothing stored."""
    with client(served) as api:
        wrong_type = api.post("/v1/inbound", content=b"x", headers={"Content-Type": "text/plain"})
        too_big = api.post("/v1/inbound", content=b"x" * (served.gw.settings.max_message_bytes + 1), headers=RFC822)
        unknown = api.post("/v1/inbound", params={"recipient": "nobody@reply.example.test"},
                           content=reply(served), headers=RFC822)
    assert (415, "Content-Type must be message/rfc822, got 'text/plain'") == (
        wrong_type.status_code, wrong_type.json()["error"])
    assert (413, True) == (too_big.status_code, "at most" in too_big.json()["error"])
    assert (422, True) == (unknown.status_code, "<nobody@reply.example.test> is not a reply address"
                           in unknown.json()["error"])
    assert served.gw.inbound.get(1) is None


def test_quarantine_lists_shows_and_releases(served: Parts, capsys: pytest.CaptureFixture[str]) -> None:
    """A spoofed reply shows in GET /v1/quarantine and the CLI; released over the API it lands."""
    with client(served) as api:
        pk = api.post("/v1/inbound", content=reply(served, sender="eve@evil.test"), headers=RFC822).json()["id"]
        held = wait_for(lambda: api.get("/v1/quarantine").json()["messages"], what="the quarantine")
        assert [(pk, "eve@evil.test")] == [(m["id"], m["from"]) for m in held]
        assert "From: Ada <eve@evil.test>" in api.get(f"/v1/quarantine/{pk}").json()["raw"]
        env = {"GATEWAY_DATABASE_URL": served.gw.settings.database_url, "GATEWAY_API_KEYS": API_KEY,
               "GATEWAY_REPLY_DOMAIN": served.gw.settings.reply_domain,
               "GATEWAY_SECRET_KEYS": "3:test-secret-key-number-three"}
        assert 0 == main(["quarantine", "list"], env)
        listed = capsys.readouterr().out.splitlines()
        assert ["id", "received", "(UTC)", "from", "subject"] == listed[0].split()
        assert "eve@evil.test" in listed[2]
        assert 200 == api.post(f"/v1/quarantine/{pk}/release").status_code
        wait_for(lambda: served.gw.inbound.get(pk).status == "landed", what="the released reply to land")  # type: ignore[union-attr]
        assert 404 == api.post(f"/v1/quarantine/{pk}/release").status_code
        assert [] == api.get("/v1/quarantine").json()["messages"]


def test_webhook_is_retried_with_backoff_until_the_help_desk_answers_2xx(
    tmp_path: Path, stub_broker: dramatiq.Broker
) -> None:
    """The help desk answers 500, then 503, then 204: the call is retried later each time, then delivered."""
    desk = HelpDesk([500, 503, 204])
    now = [NOW]
    delays: list[float] = []
    try:
        settings = settings_for(tmp_path, helpdesk_webhook_url=desk.url, helpdesk_webhook_secret=SECRET)
        gw = build_gateway(settings, broker=stub_broker, clock=lambda: now[0], webhook_poster=HttpPoster())
        ticket = open_ticket(gw)
        pk = gw.inbound.save_raw(mail_from=CUSTOMER, rcpt_to=[gw.keyring.address_for(ticket.key, CUSTOMER)],
                                 raw=b"From: ada@customer.example.test\r\nSubject: Re\r\n\r\nDone.\r\n", now=NOW)
        outcome = gw.pipeline.process(pk)
        assert outcome is not None and outcome.entry_pk is not None
        (stored_call,) = gw.webhooks.recent()
        assert outcome.entry_pk == stored_call.entry_pk
        call = stored_call.pk
        deliverer = gw.webhook_deliverer
        assert deliverer is not None
        deliverer._retry_later = lambda _pk, delay: delays.append(delay)  # the broker's delay, observed
        assert WebhookStatus.RETRYING == deliverer.deliver(call)
        assert deliverer.deliver(call) is None  # not due yet: nothing sent
        now[0] += timedelta(seconds=delays[-1])
        assert WebhookStatus.RETRYING == deliverer.deliver(call)
        now[0] += timedelta(seconds=delays[-1])
        assert WebhookStatus.DELIVERED == deliverer.deliver(call)
        assert 3 == len(desk.received)
        assert delays[1] > delays[0] > 0
        stored = gw.webhooks.get(call)
        assert stored is not None
        assert (WebhookStatus.DELIVERED, 3) == (stored.status, stored.attempts)
    finally:
        desk.close()
