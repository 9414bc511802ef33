"""Helpers for tests that run the served gateway: settings, polling, Gmail-shaped replies."""

from __future__ import annotations

import time
from collections.abc import Callable
from email import message_from_bytes
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import compat32
from email.utils import make_msgid
from pathlib import Path
from typing import TypeVar

import dramatiq

from gateway.broker import make_worker
from gateway.settings import Settings
from tests.services import free_port

__all__ = ["API_KEY", "gmail_reply", "parse", "settings_for", "wait_for"]

API_KEY = "test-helpdesk-key-0123456789"
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
