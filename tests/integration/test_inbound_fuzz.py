"""Fuzzing (hypothesis): arbitrary bytes at the parser, the pipeline and the SMTP server. No crash, no hang,
every input answered, nothing accepted lost."""

from __future__ import annotations

import re
import smtplib
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import dramatiq
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from gateway.app import build_gateway
from gateway.errors import MalformedMessage
from gateway.models import InboundStatus, RawMessage
from inbound.charsets import decode_text
from inbound.classify import classify
from inbound.parse import parse_email
from tests.helpers import CUSTOMER, Listening, open_ticket, settings_for, start_listener

FUZZ = settings(max_examples=60, deadline=2000, suppress_health_check=[HealthCheck.function_scoped_fixture])

HEADERS = st.sampled_from([
    b"From: ", b"To: ", b"Subject: ", b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n",
    b"Content-Type: text/plain; charset=", b"Content-Transfer-Encoding: base64\r\n", b"--b--\r\n",
    b"Message-ID: <", b"\r\n", b"=?utf-8?q?", b"?=", b"Content-Type: message/rfc822\r\n\r\n",
    b"Content-Type: multipart/report; report-type=delivery-status; boundary=b\r\n",
])
#: Random bytes, and random bytes stitched from MIME fragments (so the parser goes deep).
MESSAGES = st.one_of(
    st.binary(max_size=2000), st.lists(st.one_of(HEADERS, st.binary(max_size=40)), max_size=40).map(b"".join)
)


@FUZZ
@given(MESSAGES)
def test_parser_returns_a_message_or_a_specific_error(raw: bytes) -> None:
    """parse_email either parses or raises MalformedMessage; classification of what parses never fails."""
    started = time.monotonic()
    try:
        parsed = parse_email(raw)
    except MalformedMessage:
        return
    classify(parsed, mail_from=None)
    assert time.monotonic() - started < 2


@FUZZ
@given(st.binary(max_size=500), st.one_of(st.none(), st.text(max_size=20)))
@example(b"\x80", "\x00")  # a charset label with a NUL once made codecs.lookup raise ValueError
def test_decode_text_never_fails(data: bytes, label: str | None) -> None:
    """Any bytes with any label decode to text."""
    assert isinstance(decode_text(data, label), str)


@pytest.fixture
def listening(tmp_path: Path, stub_broker: dramatiq.Broker) -> Iterator[Listening]:
    gw = build_gateway(settings_for(tmp_path, max_message_bytes=64 * 1024), broker=stub_broker)
    running = start_listener(gw, open_ticket(gw))
    yield running
    running.stop()


@FUZZ
@given(MESSAGES)
def test_pipeline_records_an_end_for_any_accepted_bytes(listening: Listening, raw: bytes) -> None:
    """Whatever bytes were accepted end in a recorded status, and stay stored."""
    gw = listening.gw
    pk = gw.inbound.save_many([RawMessage(CUSTOMER, (listening.reply_to,), raw)], now=gw.clock())[0]
    gw.pipeline.process(pk)
    stored = gw.inbound.get(pk)
    assert stored is not None
    assert raw == stored.raw
    assert InboundStatus.RECEIVED != stored.status


@FUZZ
@given(MESSAGES)
def test_smtp_server_answers_any_message_body(listening: Listening, raw: bytes) -> None:
    """Any DATA content gets 250 (stored byte for byte, after SMTP's own line-ending rules) or 5xx; never silence."""
    with smtplib.SMTP("127.0.0.1", listening.port, timeout=10) as smtp:
        smtp.ehlo()
        smtp.mail(CUSTOMER)
        smtp.rcpt(listening.reply_to)
        code, text = smtp.data(raw)
    assert code in (250, 500, 552), (code, text)
    if code == 250:
        pk = int(re.search(rb"message (\d+)", text).group(1))  # type: ignore[union-attr]
        assert listening.gw.inbound.get(pk) is not None


def _replies(sock: socket.socket) -> bytes:
    sock.settimeout(5)
    data = b""
    while not re.search(rb"(^|\r\n)\d{3} [^\r\n]*\r\n$", data):
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


@FUZZ
@given(st.binary(min_size=1, max_size=300).filter(lambda b: b"\n" not in b and b"\r" not in b))
def test_smtp_server_answers_any_command_line(listening: Listening, line: bytes) -> None:
    """An arbitrary command line gets a reply with a status code, and the server keeps serving."""
    with socket.create_connection(("127.0.0.1", listening.port)) as sock:
        assert _replies(sock).startswith(b"220")
        sock.sendall(line + b"\r\n")
        answer = _replies(sock)
        assert re.match(rb"^\d{3}[ -]", answer), answer
    with smtplib.SMTP("127.0.0.1", listening.port, timeout=10) as smtp:
        assert 250 == smtp.noop()[0]

