"""Shared test helpers (test modules import from here, never from each other): settings, polling,
Gmail-shaped replies, a gateway with an open ticket and its SMTP server, store records, and a
way to make concurrent writes commit as one group."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email import message_from_bytes
from email.message import Message
from email.mime.application import MIMEApplication
from email.mime.image import MIMEImage
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import compat32
from email.utils import make_msgid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import dramatiq
from sqlalchemy import Connection, insert

from gateway.app import Gateway, build_smtp_server
from gateway.broker import make_worker
from gateway.models import Customer, Ticket, TicketCreated, TicketState
from gateway.settings import Settings
from gateway.store import UnitOfWork
from gateway.store.tables import kv
from inbound.server import InboundServer
from outbound.outbox import OutboxDraft
from tests.services import free_port

__all__ = [
    "API_KEY",
    "CUSTOMER",
    "NOW",
    "ONE_EMAIL",
    "Call",
    "HelpDesk",
    "Listening",
    "as_one_group",
    "closed_within",
    "created",
    "drain",
    "first_id",
    "gmail_reply",
    "gmail_reply_with_attachments",
    "one_draft",
    "open_ticket",
    "parse",
    "put",
    "reply_to",
    "settings_for",
    "smtp_reply_of",
    "start_listener",
    "stored_id",
    "until",
    "wait_for",
]

API_KEY = "test-helpdesk-key-0123456789"
CUSTOMER = "ada@customer.example.test"
NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
#: Seconds a test waits for threads to start leading, queue or finish.
DEADLINE = 10.0
T = TypeVar("T")


def settings_for(tmp_path: Path, **overrides: object) -> Settings:
    """Settings for one test: its own SQLite file and free loopback ports."""
    values: dict[str, object] = {
        "database_url": f"sqlite:///{tmp_path / 'gateway.sqlite3'}",
        "api_port": free_port(),
        "smtp_port": free_port(),
        "api_keys": (API_KEY,),
        "secret_keys": ((3, b"test-secret-key-number-three"),),
        "reply_domain": "reply.example.test",
        "from_address": "Acme Support <support@acme.example.test>",
        "worker_threads": 2,
        "pipeline_processes": 0,  # the worker's threads prepare; tests of the processes ask for them
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def wait_for(probe: Callable[[], T | None], *, timeout: float = 15.0, what: str = "condition") -> T:
    """Poll ``probe`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def gmail_reply(original: Message, *, sender: str, text: str, message_id: str | None = None) -> bytes:
    """A reply shaped the way Gmail writes one: new text, an "On ... wrote:" line, the quote."""
    quoted_text = original.get_payload()[0].get_payload(decode=True).decode("utf-8")
    quote = "\n".join("> " + line if line else ">" for line in quoted_text.splitlines())
    date = original["Date"]
    who = original["From"]
    plain = f"{text}\n\nOn {date}, {who} wrote:\n\n{quote}\n"
    html = (
        f'<div dir="ltr">{text}</div><br><div class="gmail_quote"><div dir="ltr" class="gmail_attr">'
        f"On {date}, {who} wrote:<br></div>"
        f'<blockquote class="gmail_quote" style="margin:0px 0px 0px 0.8ex">{quoted_text}</blockquote></div>'
    )
    reply = MIMEMultipart("alternative")
    reply["From"] = sender
    reply["To"] = original["Reply-To"]
    reply["Subject"] = "Re: " + str(original["Subject"])
    reply["Message-ID"] = message_id or make_msgid(domain="mail.gmail.example")
    reply["In-Reply-To"] = original["Message-ID"]
    reply["References"] = original["Message-ID"]
    reply.attach(MIMEText(plain, "plain", "utf-8"))
    reply.attach(MIMEText(html, "html", "utf-8"))
    return reply.as_bytes(policy=compat32.clone(linesep="\r\n"))


def parse(raw: str | bytes) -> Message:
    """A stdlib message from raw source."""
    return message_from_bytes(raw.encode() if isinstance(raw, str) else raw)


def drain(broker: dramatiq.Broker, queue: str, *, threads: int = 1, timeout_ms: int = 20_000) -> None:
    """Run a worker on ``broker`` until ``queue`` is empty and its jobs are done, then stop it."""
    worker = make_worker(broker, threads=threads)
    worker.start()
    try:
        broker.join(queue, timeout=timeout_ms)  # type: ignore[attr-defined]
        worker.join()
    finally:
        worker.stop()


# -- a gateway with one open ticket, and its SMTP server ----------------------------------------


def open_ticket(gw: Gateway, ticket_id: str = "T-1", email: str = CUSTOMER) -> Ticket:
    """Create a ticket as the help desk would; return it."""
    event = TicketCreated(
        event_id="evt-" + ticket_id, occurred_at=NOW, ticket_id=ticket_id, title="Printer prints blank pages",
        description="Every page comes out blank.", state=TicketState.SUBMITTED, created_by="customer",
        customer=Customer(id="c-" + email, email=email, name="Ada Lovelace"),
    )
    gw.events.ticket_created(event, now=NOW)
    ticket = gw.tickets.get(ticket_id)
    assert ticket is not None
    return ticket


def gmail_reply_with_attachments(
    original: Message, *, sender: str, text: str, signature: str, image: bytes, pdf: bytes
) -> bytes:
    """A Gmail HTML reply with a signature, an inline screenshot (``cid:``) and a PDF attachment,
    laid out as Gmail sends one: mixed(related(alternative(text, html), image), pdf)."""
    quoted_text = original.get_payload()[0].get_payload(decode=True).decode("utf-8")
    quote = "\n".join("> " + line if line else ">" for line in quoted_text.splitlines())
    date, who = original["Date"], original["From"]
    sig_lines = signature.splitlines()
    plain = (f"{text}\n[image: screenshot.png]\n\n-- \n" + "\n".join(sig_lines)
             + f"\n\nOn {date}, {who} wrote:\n\n{quote}\n")
    html = (
        f'<div dir="ltr"><div>{text}</div><div><img src="cid:ii_m3x1shot" alt="screenshot.png" width="544"'
        f' height="306"><br></div><br clear="all"><div><br></div><span class="gmail_signature_prefix">-- </span><br>'
        f'<div dir="ltr" class="gmail_signature" data-smartmail="gmail_signature">{"<br>".join(sig_lines)}</div></div>'
        f'<br><div class="gmail_quote gmail_quote_container"><div dir="ltr" class="gmail_attr">On {date}, {who} wrote:'
        f'<br></div><blockquote class="gmail_quote" style="margin:0px 0px 0px 0.8ex">{quoted_text}</blockquote></div>'
    )
    alternative = MIMEMultipart("alternative")
    alternative.attach(MIMEText(plain, "plain", "utf-8"))
    alternative.attach(MIMEText(html, "html", "utf-8"))
    related = MIMEMultipart("related")
    related.attach(alternative)
    screenshot = MIMEImage(image, "png", name="screenshot.png")
    screenshot.add_header("Content-Disposition", "inline", filename="screenshot.png")
    screenshot.add_header("Content-ID", "<ii_m3x1shot>")
    screenshot.add_header("X-Attachment-Id", "ii_m3x1shot")
    related.attach(screenshot)
    reply = MIMEMultipart("mixed")
    reply.attach(related)
    document = MIMEApplication(pdf, "pdf", name="printer-log.pdf")
    document.add_header("Content-Disposition", "attachment", filename="printer-log.pdf")
    reply.attach(document)
    reply["From"] = sender
    reply["To"] = original["Reply-To"]
    reply["Subject"] = "Re: " + str(original["Subject"])
    reply["Message-ID"] = make_msgid(domain="mail.gmail.example")
    reply["In-Reply-To"] = original["Message-ID"]
    reply["References"] = original["Message-ID"]
    return reply.as_bytes(policy=compat32.clone(linesep="\r\n"))


@dataclass
class Listening:
    """A gateway, its open ticket, the reply address of that ticket and the running SMTP server."""

    gw: Gateway
    ticket: Ticket
    reply_to: str
    server: InboundServer

    @property
    def port(self) -> int:
        return self.server.bound_port

    def stop(self) -> None:
        self.server.stop(no_assert=True)
        self.gw.db.mail.stop()


def start_listener(gw: Gateway, ticket: Ticket, **limits: float) -> Listening:
    """Start ``gw``'s SMTP server (its limits overridden by ``limits``) and the inbox's committer."""
    gw.db.mail.start()
    server = build_smtp_server(gw)
    server.limits = replace(server.limits, **limits)  # type: ignore[arg-type]
    server.start()
    return Listening(gw, ticket, gw.keyring.address_for(ticket.key, ticket.customer.email), server)


REPLY = (
    b"From: Ada Lovelace <ada@customer.example.test>\r\nTo: {to}\r\nSubject: Re: Printer\r\n"
    b"Message-ID: <r1@mail.example.test>\r\n\r\nIt works again.\r\n"
)


def reply_to(listening: Listening, body: bytes = REPLY) -> bytes:
    """``body`` addressed to the listening ticket's reply address."""
    return body.replace(b"{to}", listening.reply_to.encode())


def stored_id(reply: bytes) -> int:
    """The inbound message id a ``250`` names."""
    match = re.search(rb"stored as inbound message (\d+)", reply)
    assert match is not None, reply
    return int(match.group(1))


# -- store records -------------------------------------------------------------------------------


def created(event_id: str = "evt-1", ticket_id: str = "T-1") -> TicketCreated:
    """A ``ticket.created`` event for customer c-1."""
    return TicketCreated(
        event_id=event_id, occurred_at=NOW, ticket_id=ticket_id, title="Printer", description="Blank pages",
        state=TicketState.SUBMITTED, created_by="teammate",
        customer=Customer(id="c-1", email="ada@example.com", name="Ada", locale="en"),
    )


def first_id(ticket_id: str = "T-1") -> str:
    """The Message-ID :func:`one_draft` gives the ticket's first email (its thread root)."""
    return f"<{ticket_id}-first@example.test>"


def one_draft(ticket: Ticket) -> list[OutboxDraft]:
    """The one email of a ticket, with :func:`first_id`."""
    return [
        OutboxDraft(ticket_key=ticket.key, kind="ticket_created", to=ticket.customer.email, subject=ticket.title,
                    message_id=first_id(ticket.id), raw=b"Subject: x\r\n\r\nbody\r\n")
    ]


#: ``drafts`` and ``root_message_id`` for ticket T-1's one email.
ONE_EMAIL: dict[str, Any] = {"drafts": one_draft, "root_message_id": first_id()}


# -- concurrent writes as one group --------------------------------------------------------------

#: A call made from a thread of its own; the first one calls ``hold()`` inside its transaction.
Call = Callable[[Callable[[], None]], Any]


def until(condition: Callable[[], bool]) -> None:
    """Wait (polling) until ``condition()``; fail after :data:`DEADLINE`."""
    deadline = time.monotonic() + DEADLINE
    while not condition():
        assert time.monotonic() < deadline, "the threads did not get there in time"
        time.sleep(0.002)


def as_one_group(uow: UnitOfWork, calls: list[Call]) -> list[Any]:
    """Make ``calls`` from threads so that all but the first commit as one group, in order: the
    first leads a group of one and holds it until the others queue, one after the other.
    Returns each call's result or the exception it raised."""
    outcomes: list[Any] = [None] * len(calls)
    leading = threading.Event()

    def hold() -> None:
        leading.set()
        until(lambda: uow.pending == len(calls) - 1)

    def call(n: int) -> None:
        try:
            outcomes[n] = calls[n](hold if n == 0 else lambda: None)
        except Exception as exc:  # noqa: BLE001 - the test compares it
            outcomes[n] = exc

    threads = [threading.Thread(target=call, args=(n,)) for n in range(len(calls))]
    threads[0].start()
    assert leading.wait(DEADLINE)
    for n, thread in enumerate(threads[1:], start=1):
        thread.start()
        until(lambda n=n: uow.pending == n)
    for thread in threads:
        thread.join(DEADLINE)
    return outcomes


def put(uow: UnitOfWork, key: str, *, fail: bool = False) -> Call:
    """A call storing ``key`` in the kv table (then raising, if ``fail``)."""

    def work(conn: Connection, hold: Callable[[], None]) -> str:
        conn.execute(insert(kv).values(key=key, value="v"))
        hold()
        if fail:
            raise ValueError(f"work {key!r} failed")
        return key

    return lambda hold: uow.run(lambda conn: work(conn, hold))


# -- the help desk's webhook receiver ------------------------------------------------------------


class HelpDesk:
    """A real HTTP server on loopback standing in for the help desk: answers from ``answers`` (then 200)."""

    def __init__(self, answers: list[int] | None = None) -> None:
        self.answers = list(answers or [])
        self.received: list[tuple[dict[str, str], bytes]] = []
        desk = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                desk.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(desk.answers.pop(0) if desk.answers else 200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/email"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# -- raw SMTP sockets ----------------------------------------------------------------------------


def smtp_reply_of(sock: socket.socket) -> bytes:
    """One whole SMTP reply read from ``sock`` (every line of a multi-line one)."""
    data = b""
    while not re.search(rb"(^|\r\n)\d{3} [^\r\n]*\r\n$", data):
        chunk = sock.recv(4096)
        assert chunk, data
        data += chunk
    return data


def closed_within(sock: socket.socket, seconds: float = 5.0) -> bool:
    """Read until the server closes ``sock``; False if it is still open after ``seconds``."""
    sock.settimeout(0.05)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if sock.recv(4096) == b"":
                return True
        except TimeoutError:
            continue
        except ConnectionResetError:
            return True
    return False
