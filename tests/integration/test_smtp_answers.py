"""Every answer of the inbound SMTP server, with a real aiosmtpd listener and smtplib on loopback."""

from __future__ import annotations

import smtplib
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from gateway.models import InboundStatus
from inbound import inbox
from tests.helpers import CUSTOMER, Listening, closed_within, reply_to, smtp_reply_of, stored_id, wait_for

MakeListening = Callable[..., Listening]

def send(listening: Listening, raw: bytes) -> tuple[int, bytes]:
    """MAIL, RCPT, DATA on a fresh connection; the DATA answer."""
    with smtplib.SMTP("127.0.0.1", listening.port, timeout=10) as smtp:
        smtp.ehlo()
        assert 250 == smtp.mail(CUSTOMER)[0]
        assert 250 == smtp.rcpt(listening.reply_to)[0]
        return smtp.data(raw)


def test_valid_reply_address_is_accepted_and_committed_before_250(make_listening: MakeListening) -> None:
    """250 names the gateway's id, and that id is already in the store with the exact bytes sent."""
    listening = make_listening()
    raw = reply_to(listening)
    code, text = send(listening, raw)
    assert 250 == code
    assert text.startswith(b"2.0.0")
    stored = listening.gw.inbound.get(stored_id(text))
    assert stored is not None
    assert raw == stored.raw
    assert (listening.reply_to,) == stored.rcpt_to
    assert InboundStatus.RECEIVED == stored.status


def test_each_recipient_is_checked_and_refused_with_a_reason(make_listening: MakeListening) -> None:
    """Unknown and forged addresses get 550 5.1.1 naming the address; the valid one in the same transaction goes on."""
    listening = make_listening()
    local, domain = listening.reply_to.split("@")
    forged = local[:-5] + ("a" if local[-5] != "a" else "b") + local[-4:] + "@" + domain
    with smtplib.SMTP("127.0.0.1", listening.port, timeout=10) as smtp:
        smtp.ehlo()
        smtp.mail(CUSTOMER)
        code, text = smtp.rcpt("support@" + domain)
        expected = b"5.1.1 <support@" + domain.encode() + b"> is not a reply address"
        assert (550, True) == (code, text.startswith(expected))
        code, text = smtp.rcpt(forged)
        assert (550, True) == (code, b"not a valid reply address" in text and text.startswith(b"5.1.1"))
        assert 250 == smtp.rcpt(listening.reply_to)[0]
        code, text = smtp.data(reply_to(listening))
    assert 250 == code
    stored = listening.gw.inbound.get(stored_id(text))
    assert stored is not None
    assert (listening.reply_to,) == stored.rcpt_to


def test_ehlo_advertises_size_8bitmime_and_smtputf8(make_listening: MakeListening) -> None:
    """EHLO lists SIZE with the configured limit, 8BITMIME and SMTPUTF8."""
    listening = make_listening(max_message_bytes=4096)
    with smtplib.SMTP("127.0.0.1", listening.port, timeout=10) as smtp:
        smtp.ehlo()
        assert "4096" == smtp.esmtp_features["size"]
        assert smtp.has_extn("8bitmime")
        assert smtp.has_extn("smtputf8")


def test_message_over_the_size_limit_gets_552_534(make_listening: MakeListening) -> None:
    """Declared too big at MAIL, or too big in DATA: 552 5.3.4 with the limit, and nothing stored."""
    listening = make_listening(max_message_bytes=4096)
    with smtplib.SMTP("127.0.0.1", listening.port, timeout=10) as smtp:
        smtp.ehlo()
        code, text = smtp.mail(CUSTOMER, options=["SIZE=5000"])
        assert (552, b"5.3.4 Message too big: this server accepts at most 4096 bytes") == (code, text)
        smtp.rset()
        smtp.mail(CUSTOMER)
        smtp.rcpt(listening.reply_to)
        code, text = smtp.data(reply_to(listening) + (b"x" * 70 + b"\r\n") * 80)
        assert (552, True) == (code, text.startswith(b"5.3.4"))
        assert 250 == smtp.noop()[0]  # the session goes on
    assert listening.gw.inbound.get(1) is None


def test_8bit_body_and_utf8_envelope_are_stored_byte_for_byte(make_listening: MakeListening) -> None:
    """A raw UTF-8 body (8BITMIME) from an internationalised sender (SMTPUTF8) is accepted unchanged."""
    listening = make_listening()
    raw = reply_to(listening).replace(b"It works again.", "Ça marche, merci ! 你好".encode())
    with smtplib.SMTP("127.0.0.1", listening.port, timeout=10) as smtp:
        smtp.ehlo()
        assert 250 == smtp.mail("adá@bücher.example.test", options=["BODY=8BITMIME", "SMTPUTF8"])[0]
        smtp.rcpt(listening.reply_to)
        code, text = smtp.data(raw)
    assert 250 == code
    stored = listening.gw.inbound.get(stored_id(text))
    assert stored is not None
    assert (raw, "adá@bücher.example.test") == (stored.raw, stored.mail_from)


def test_store_down_answers_451_then_250_when_back_and_lands_once(
    make_listening: MakeListening, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the store cannot commit the sender gets 451 4.3.0; its retry gets 250 and the reply lands once."""
    listening = make_listening()
    real_insert = inbox.insert_raw

    def store_down(*args: Any, **kwargs: Any) -> int:
        raise OperationalError("INSERT", {}, Exception("could not connect to server"))

    monkeypatch.setattr(inbox, "insert_raw", store_down)
    raw = reply_to(listening)
    code, text = send(listening, raw)
    assert (451, True) == (code, text.startswith(b"4.3.0"))
    assert listening.gw.inbound.get(1) is None

    monkeypatch.setattr(inbox, "insert_raw", real_insert)
    code, text = send(listening, raw)  # the sending server retries
    assert 250 == code
    listening.gw.pipeline.process(stored_id(text))
    replies = [e.text for e in listening.gw.tickets.thread(listening.ticket.key) if e.kind.value == "customer_reply"]
    assert ["It works again."] == replies


def test_connections_beyond_the_cap_get_421(make_listening: MakeListening) -> None:
    """With a cap of 2, a third connection is greeted with 421 4.7.0; once one closes, a new one is served."""
    listening = make_listening(max_connections=2)
    first = smtplib.SMTP("127.0.0.1", listening.port, timeout=10)
    second = smtplib.SMTP("127.0.0.1", listening.port, timeout=10)
    with pytest.raises(smtplib.SMTPConnectError) as refused:
        smtplib.SMTP("127.0.0.1", listening.port, timeout=10)
    assert 421 == refused.value.smtp_code
    assert refused.value.smtp_error.startswith(b"4.7.0")
    first.quit()
    third = wait_for(lambda: _connect(listening.port), what="a free connection slot")
    assert 250 == third.noop()[0]
    second.quit()
    third.quit()


def _connect(port: int) -> smtplib.SMTP | None:
    try:
        return smtplib.SMTP("127.0.0.1", port, timeout=10)
    except smtplib.SMTPConnectError:
        return None


def test_idle_client_is_disconnected(make_listening: MakeListening) -> None:
    """A client silent for longer than the idle timeout is disconnected."""
    listening = make_listening(limits={"idle_timeout": 0.3})
    with socket.create_connection(("127.0.0.1", listening.port)) as sock:
        assert sock.recv(1024).startswith(b"220")
        assert closed_within(sock, 5)


def test_slow_client_is_cut_off_during_data_and_nothing_is_stored(make_listening: MakeListening) -> None:
    """A client trickling its message slower than the DATA timeout allows is cut off; nothing half-sent is stored."""
    listening = make_listening(limits={"idle_timeout": 30, "data_timeout": 0.5})
    with socket.create_connection(("127.0.0.1", listening.port)) as sock:
        sock.recv(1024)
        for line in (b"EHLO slow.example.test", f"MAIL FROM:<{CUSTOMER}>".encode(),
                     f"RCPT TO:<{listening.reply_to}>".encode(), b"DATA"):
            sock.sendall(line + b"\r\n")
            assert sock.recv(4096)[:1] in (b"2", b"3")
        closed = False
        deadline = time.monotonic() + 5
        while not closed and time.monotonic() < deadline:
            try:
                sock.sendall(b"a slow line\r\n")
            except (BrokenPipeError, ConnectionResetError):
                break
            closed = closed_within(sock, 0.1)
        assert closed or time.monotonic() < deadline
    assert listening.gw.inbound.get(1) is None


def test_data_has_its_own_deadline_longer_than_the_idle_timeout(make_listening: MakeListening) -> None:
    """A pause inside DATA longer than the idle timeout (but within the DATA timeout) does not cut the client off;
    once DATA is answered, the idle timeout applies again."""
    listening = make_listening(limits={"idle_timeout": 0.4, "data_timeout": 30})
    raw = reply_to(listening)
    head, tail = raw[: len(raw) // 2], raw[len(raw) // 2:]
    with socket.create_connection(("127.0.0.1", listening.port)) as sock:
        sock.settimeout(10)
        assert smtp_reply_of(sock).startswith(b"220")
        for line in (b"EHLO slow.example.test", f"MAIL FROM:<{CUSTOMER}>".encode(),
                     f"RCPT TO:<{listening.reply_to}>".encode(), b"DATA"):
            sock.sendall(line + b"\r\n")
            assert smtp_reply_of(sock)[:1] in (b"2", b"3")
        sock.sendall(head)
        time.sleep(1.0)  # 2.5 idle timeouts
        sock.sendall(tail + b".\r\n")
        answer = smtp_reply_of(sock)
        assert answer.startswith(b"250 2.0.0"), answer
        assert closed_within(sock, 5)
    assert listening.gw.inbound.get(stored_id(answer)) is not None


def test_graceful_stop_finishes_transactions_in_flight_and_refuses_new_ones(make_listening: MakeListening) -> None:
    """While stopping, a new connection gets 421 4.3.2, and the message being sent still gets its 250."""
    listening = make_listening()
    smtp = smtplib.SMTP("127.0.0.1", listening.port, timeout=10)
    smtp.ehlo()
    smtp.mail(CUSTOMER)
    smtp.rcpt(listening.reply_to)
    stopper = threading.Thread(target=listening.server.stop)
    stopper.start()
    wait_for(lambda: listening.server.gate.stopping, what="the stop to begin")
    with pytest.raises(smtplib.SMTPConnectError) as refused:
        smtplib.SMTP("127.0.0.1", listening.port, timeout=10)
    assert (421, True) == (refused.value.smtp_code, refused.value.smtp_error.startswith(b"4.3.2"))
    code, text = smtp.data(reply_to(listening))
    assert 250 == code
    stopper.join(timeout=10)
    assert not stopper.is_alive()
    assert listening.gw.inbound.get(stored_id(text)) is not None
