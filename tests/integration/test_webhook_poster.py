"""The real webhook poster against real HTTP servers on loopback: what reaches the help desk, and what a
refused connection, a redirect or an untrusted certificate leave on the call."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import dramatiq
import pytest
import trustme

from gateway.app import Gateway, build_gateway
from gateway.models import WebhookStatus
from inbound.webhook import HttpPoster
from tests.helpers import CUSTOMER, NOW, HelpDesk, open_ticket, settings_for

SECRET = "webhook-secret-0123456789"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Redirecting:
    """An HTTP(S) server on loopback that answers every POST with ``302`` to a second path, and counts."""

    def __init__(self, context: ssl.SSLContext | None = None) -> None:
        self.posts: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                server.posts.append(self.path)
                self.send_response(302)
                self.send_header("Location", "/elsewhere")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if context is not None:
            self.http.socket = context.wrap_socket(self.http.socket, server_side=True)
        scheme = "https" if context is not None else "http"
        self.url = f"{scheme}://localhost:{self.http.server_address[1]}/hooks/email"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()


def gateway_posting_to(tmp_path: Path, broker: dramatiq.Broker, url: str) -> tuple[Gateway, int]:
    """A gateway whose help-desk webhook is ``url``, with one landed reply: its stored call's pk."""
    settings = settings_for(tmp_path, helpdesk_webhook_url=url, helpdesk_webhook_secret=SECRET)
    gw = build_gateway(settings, broker=broker, clock=lambda: NOW, webhook_poster=HttpPoster(timeout=5))
    ticket = open_ticket(gw)
    pk = gw.inbound.save_raw(mail_from=CUSTOMER, rcpt_to=[gw.keyring.address_for(ticket.key, CUSTOMER)],
                             raw=b"From: ada@customer.example.test\r\nSubject: Re\r\n\r\nDone.\r\n", now=NOW)
    gw.pipeline.process(pk)
    (call,) = gw.webhooks.recent()
    return gw, call.pk


def attempt(gw: Gateway, pk: int) -> tuple[WebhookStatus | None, str]:
    deliverer = gw.webhook_deliverer
    assert deliverer is not None
    deliverer._retry_later = lambda _pk, _delay: None  # the broker's delay is not what these tests look at
    status = deliverer.deliver(pk)
    stored = gw.webhooks.get(pk)
    assert stored is not None
    return status, stored.last_error or ""


@pytest.fixture
def desk() -> Iterator[HelpDesk]:
    helpdesk = HelpDesk()
    yield helpdesk
    helpdesk.close()


def test_the_help_desk_gets_the_payload_and_the_signed_headers(
    tmp_path: Path, stub_broker: dramatiq.Broker, desk: HelpDesk
) -> None:
    gw, pk = gateway_posting_to(tmp_path, stub_broker, desk.url)
    assert (WebhookStatus.DELIVERED, "") == attempt(gw, pk)
    ((headers, body),) = desk.received
    assert b'"Done."' in body
    assert "application/json" == headers["content-type"]
    assert str(pk) == headers["x-web2chat-delivery"]
    assert headers["x-web2chat-signature"].startswith("sha256=")


def test_a_refused_connection_is_retried_and_says_so(tmp_path: Path, stub_broker: dramatiq.Broker) -> None:
    gw, pk = gateway_posting_to(tmp_path, stub_broker, f"http://127.0.0.1:{closed_port()}/hooks/email")
    status, error = attempt(gw, pk)
    assert WebhookStatus.RETRYING == status
    assert "Connection refused" in error


def test_a_redirect_is_not_followed(tmp_path: Path, stub_broker: dramatiq.Broker) -> None:
    """A 302 is an answer that is not a 2xx: the call is retried, the body not sent anywhere else."""
    server = Redirecting()
    try:
        gw, pk = gateway_posting_to(tmp_path, stub_broker, server.url)
        assert (WebhookStatus.RETRYING, "answered 302") == attempt(gw, pk)
        assert ["/hooks/email"] == server.posts
    finally:
        server.close()


def test_a_certificate_nobody_trusts_is_refused(tmp_path: Path, stub_broker: dramatiq.Broker) -> None:
    """HTTPS to a help desk whose certificate no trusted authority signed: nothing is posted to it."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    trustme.CA().issue_cert("localhost").configure_cert(context)
    server = Redirecting(context)
    try:
        gw, pk = gateway_posting_to(tmp_path, stub_broker, server.url)
        status, error = attempt(gw, pk)
        assert WebhookStatus.RETRYING == status
        assert "CERTIFICATE_VERIFY_FAILED" in error
        assert [] == server.posts
    finally:
        server.close()


def test_kept_alive_connections_serve_many_calls(tmp_path: Path, stub_broker: dramatiq.Broker, desk: HelpDesk) -> None:
    """Calls one after another all arrive (the pooled connection is reused, not left half-read)."""
    gw, first = gateway_posting_to(tmp_path, stub_broker, desk.url)
    assert WebhookStatus.DELIVERED == attempt(gw, first)[0]
    for n in range(3):
        assert gw.webhooks.replay(first, now=NOW) is False  # delivered calls are not replayed
        ticket = gw.tickets.get("T-1")
        assert ticket is not None
        raw = f"From: {CUSTOMER}\r\nSubject: Re\r\nMessage-ID: <m{n}@c.test>\r\n\r\nAgain {n}.\r\n".encode()
        pk = gw.inbound.save_raw(mail_from=CUSTOMER, rcpt_to=[gw.keyring.address_for(ticket.key, CUSTOMER)],
                                 raw=raw, now=NOW + timedelta(seconds=n + 1))
        gw.pipeline.process(pk)
    calls = [c.pk for c in gw.webhooks.recent() if c.status is WebhookStatus.QUEUED]
    assert 3 == len(calls)
    deliverer = gw.webhook_deliverer
    assert deliverer is not None
    assert {pk: WebhookStatus.DELIVERED for pk in calls} == deliverer.deliver_many(calls)
    assert 4 == len(desk.received)
