"""Per-client limits and bounded memory of the inbound SMTP server, with a real listener on loopback."""

from __future__ import annotations

import re
import smtplib
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dramatiq
import pytest

from gateway.app import build_gateway
from inbound.extract import extract_reply
from inbound.pipeline import LARGE_MESSAGE_BYTES
from tests.helpers import (
    CUSTOMER,
    DEADLINE,
    NOW,
    Listening,
    closed_within,
    open_ticket,
    reply_to,
    settings_for,
    smtp_reply_of,
    stored_id,
    wait_for,
)

MakeListening = Callable[..., Listening]


def _session(listening: Listening, source: str = "127.0.0.1") -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", listening.port), timeout=10, source_address=(source, 0))
    assert smtp_reply_of(sock).startswith(b"220")
    sock.sendall(b"EHLO client.example.test\r\n")
    assert smtp_reply_of(sock).startswith(b"250")
    return sock


def _say(sock: socket.socket, line: bytes) -> bytes:
    sock.sendall(line + b"\r\n")
    return smtp_reply_of(sock)


def _refused_after_the_delay(sock: socket.socket, line: bytes, *, times: int, delay: float) -> None:
    for _ in range(times):
        started = time.monotonic()
        assert _say(sock, line).startswith(b"550 5.1.1")
        assert time.monotonic() - started >= delay


def _ended_with_too_many_errors(sock: socket.socket, line: bytes) -> None:
    """Send ``line`` once more: the answer (after any refusals still owed) ends in 421 4.7.0 and a close."""
    sock.sendall(line + b"\r\n")
    data = b""
    while b"421" not in data:
        chunk = sock.recv(4096)
        assert chunk, data
        data += chunk
    assert b"421 4.7.0 Too many errors" in data
    assert closed_within(sock)


# -- connections per peer ------------------------------------------------------------------------


def test_one_address_at_its_cap_does_not_keep_another_out(make_listening: MakeListening) -> None:
    """With 2 connections per peer, 127.0.0.1's third gets 421 4.7.0 while 127.0.0.2 is still served."""
    listening = make_listening(smtp_max_connections_per_peer=2)
    held = [smtplib.SMTP("127.0.0.1", listening.port, timeout=10, source_address=("127.0.0.1", 0)) for _ in range(2)]
    with pytest.raises(smtplib.SMTPConnectError) as refused:
        smtplib.SMTP("127.0.0.1", listening.port, timeout=10, source_address=("127.0.0.1", 0))
    assert (421, True) == (refused.value.smtp_code, refused.value.smtp_error.startswith(b"4.7.0"))
    assert b"from your address" in refused.value.smtp_error
    with smtplib.SMTP("127.0.0.1", listening.port, timeout=10, source_address=("127.0.0.2", 0)) as other:
        other.ehlo()
        assert 250 == other.mail(CUSTOMER)[0]
        assert 250 == other.rcpt(listening.reply_to)[0]
        assert 250 == other.data(reply_to(listening))[0]
    held[0].quit()
    again = wait_for(lambda: listening.server.gate.connections_from("127.0.0.1") < 2, what="a released slot")
    assert again
    with smtplib.SMTP("127.0.0.1", listening.port, timeout=10, source_address=("127.0.0.1", 0)) as third:
        assert 250 == third.noop()[0]
    held[1].quit()


# -- session length and commands ------------------------------------------------------------------


def test_a_session_that_keeps_sending_noop_ends_at_its_maximum_length(make_listening: MakeListening) -> None:
    """NOOPs keep the idle timeout away, but the session ends with 421 4.7.0 when it is too old, and closes."""
    listening = make_listening(limits={"max_session_seconds": 0.5, "max_commands_per_message": 10**9})
    with _session(listening) as sock:
        deadline = time.monotonic() + 10
        answer = b""
        while time.monotonic() < deadline:
            answer = _say(sock, b"NOOP")  # the 421 may come in the same read as the last NOOP's 250
            if b"421" in answer:
                break
        assert b"421 4.7.0 Session too long" in answer, answer
        assert closed_within(sock)
    assert 0 == listening.server.gate.connections_from("127.0.0.1")


def test_a_session_sending_commands_without_a_message_is_ended(make_listening: MakeListening) -> None:
    """With a budget of 20 commands per message, the 21st command without a message gets its answer, then 421 4.7.0."""
    listening = make_listening(limits={"max_commands_per_message": 20})
    with _session(listening) as sock:  # the greeting and EHLO: 2 commands
        answers = [_say(sock, b"NOOP") for _ in range(18)]
        assert all(a.startswith(b"250") for a in answers)
        sock.sendall(b"NOOP\r\n")
        data = b""
        while b"421" not in data:
            chunk = sock.recv(4096)
            assert chunk, data
            data += chunk
        assert data.startswith(b"250"), data
        assert b"421 4.7.0 Too many commands" in data
        assert closed_within(sock)


def test_an_mta_pipelining_200_messages_on_one_connection_is_not_cut(make_listening: MakeListening) -> None:
    """200 messages on one connection, with the default limits, all get 250 and are stored."""
    listening = make_listening()
    raw = reply_to(listening)
    ids = set()
    with smtplib.SMTP("127.0.0.1", listening.port, timeout=10) as smtp:
        smtp.ehlo()
        for _ in range(200):
            assert 250 == smtp.mail(CUSTOMER)[0]
            assert 250 == smtp.rcpt(listening.reply_to)[0]
            code, text = smtp.data(raw)
            assert 250 == code, text
            ids.add(stored_id(text))
            assert 250 == smtp.rset()[0]
    assert 200 == len(ids)


def test_recipients_beyond_the_cap_get_452_453(make_listening: MakeListening) -> None:
    """With 2 recipients per message, the third RCPT gets 452 4.5.3; the message goes to the first two."""
    listening = make_listening(smtp_max_recipients=2)
    with smtplib.SMTP("127.0.0.1", listening.port, timeout=10) as smtp:
        smtp.ehlo()
        smtp.mail(CUSTOMER)
        assert 250 == smtp.rcpt(listening.reply_to)[0]
        assert 250 == smtp.rcpt(listening.reply_to)[0]
        code, text = smtp.rcpt(listening.reply_to)
        assert (452, True) == (code, text.startswith(b"4.5.3"))
        code, text = smtp.data(reply_to(listening))
    assert 250 == code
    stored = listening.gw.inbound.get(stored_id(text))
    assert stored is not None
    assert 2 == len(stored.rcpt_to)


def test_a_peer_that_keeps_failing_is_slowed_down_then_dropped(make_listening: MakeListening) -> None:
    """After 3 refused RCPTs each refusal waits the delay; after 6, the session ends with 421 4.7.0."""
    listening = make_listening(limits={"max_failures": 3, "failure_delay": 0.3})
    wrong = b"RCPT TO:<support@reply.example.test>"
    with _session(listening) as sock:
        assert _say(sock, f"MAIL FROM:<{CUSTOMER}>".encode()).startswith(b"250")
        for _ in range(3):
            started = time.monotonic()
            assert _say(sock, wrong).startswith(b"550 5.1.1")
            assert time.monotonic() - started < 0.3
        _refused_after_the_delay(sock, wrong, times=3, delay=0.3)
        _ended_with_too_many_errors(sock, wrong)


def test_reconnecting_does_not_reset_a_failing_peers_slow_down(make_listening: MakeListening) -> None:
    """Refusals count per address: 127.0.0.1's fourth to sixth refusals, in a new session, wait; 127.0.0.2's first
    does not; the seventh ends the session with 421 4.7.0."""
    listening = make_listening(limits={"max_failures": 3, "failure_delay": 0.3})
    wrong = b"RCPT TO:<support@reply.example.test>"
    for _ in range(3):  # one refusal a session, each session closed by the client
        with _session(listening) as sock:
            assert _say(sock, f"MAIL FROM:<{CUSTOMER}>".encode()).startswith(b"250")
            assert _say(sock, wrong).startswith(b"550 5.1.1")
    with _session(listening, source="127.0.0.2") as other:
        assert _say(other, f"MAIL FROM:<{CUSTOMER}>".encode()).startswith(b"250")
        started = time.monotonic()
        assert _say(other, wrong).startswith(b"550 5.1.1")
        assert time.monotonic() - started < 0.3
    with _session(listening) as sock:
        assert _say(sock, f"MAIL FROM:<{CUSTOMER}>".encode()).startswith(b"250")
        _refused_after_the_delay(sock, wrong, times=3, delay=0.3)
        _ended_with_too_many_errors(sock, wrong)


def test_without_a_per_address_cap_refusals_count_per_session(make_listening: MakeListening) -> None:
    """Behind a relay (per-peer cap 0) one sender's refusals do not slow the relay's next session."""
    listening = make_listening(limits={"max_failures": 3, "failure_delay": 0.3}, smtp_max_connections_per_peer=0)
    wrong = b"RCPT TO:<support@reply.example.test>"
    with _session(listening) as sock:
        assert _say(sock, f"MAIL FROM:<{CUSTOMER}>".encode()).startswith(b"250")
        for _ in range(5):
            assert _say(sock, wrong).startswith(b"550 5.1.1")
    with _session(listening) as sock:
        assert _say(sock, f"MAIL FROM:<{CUSTOMER}>".encode()).startswith(b"250")
        started = time.monotonic()
        assert _say(sock, wrong).startswith(b"550 5.1.1")
        assert time.monotonic() - started < 0.3


def test_a_delivered_message_forgives_part_of_a_peers_refusals(make_listening: MakeListening) -> None:
    """An MTA whose some recipients are stale keeps delivering: 4 refusals, a delivery (score 2), then a refusal
    that is answered at once."""
    listening = make_listening(limits={"max_failures": 3, "failure_delay": 0.3})
    wrong = "support@reply.example.test"
    with smtplib.SMTP("127.0.0.1", listening.port, timeout=10) as smtp:
        smtp.ehlo()
        for _ in range(4):
            smtp.mail(CUSTOMER)
            assert 550 == smtp.rcpt(wrong)[0]
            smtp.rset()
        smtp.mail(CUSTOMER)
        assert 250 == smtp.rcpt(listening.reply_to)[0]
        assert 250 == smtp.data(reply_to(listening))[0]
        smtp.mail(CUSTOMER)
        started = time.monotonic()
        assert 550 == smtp.rcpt(wrong)[0]
        assert time.monotonic() - started < 0.3


# -- memory: spooled DATA and the bytes in flight -------------------------------------------------


def test_a_large_message_is_spooled_and_stored_byte_for_byte(make_listening: MakeListening) -> None:
    """A 3 MB message (past the spool threshold) with dot-stuffed lines is stored exactly; no bytes stay counted."""
    listening = make_listening()
    body = b"".join(b".line %d of a large message, with a leading dot\r\n" % n for n in range(60_000))
    raw = reply_to(listening).replace(b"It works again.\r\n", b"It works again.\r\n" + body)
    assert len(raw) > 2 * 1024 * 1024
    with smtplib.SMTP("127.0.0.1", listening.port, timeout=30) as smtp:
        smtp.ehlo()
        smtp.mail(CUSTOMER)
        smtp.rcpt(listening.reply_to)
        code, text = smtp.data(raw)
    assert 250 == code, text
    stored = listening.gw.inbound.get(stored_id(text))
    assert stored is not None
    assert raw == stored.raw
    assert 0 == listening.server.gate.bytes_in_flight


def test_a_message_over_the_bytes_budget_gets_452_431(make_listening: MakeListening) -> None:
    """With 100 kB in flight at most, a 200 kB message gets 452 4.3.1, nothing is stored; a small one then passes."""
    listening = make_listening(smtp_max_bytes_in_flight=100_000)
    big = reply_to(listening) + (b"y" * 70 + b"\r\n") * 2800
    with smtplib.SMTP("127.0.0.1", listening.port, timeout=10) as smtp:
        smtp.ehlo()
        smtp.mail(CUSTOMER)
        smtp.rcpt(listening.reply_to)
        code, text = smtp.data(big)
        assert (452, b"4.3.1 Insufficient system storage; please try again later") == (code, text)
        assert listening.gw.inbound.get(1) is None
        smtp.mail(CUSTOMER)
        smtp.rcpt(listening.reply_to)
        assert 250 == smtp.data(reply_to(listening))[0]
    assert 0 == listening.server.gate.bytes_in_flight


def test_the_bytes_budget_is_shared_by_all_sessions(make_listening: MakeListening) -> None:
    """While one session holds 80 kB of a message, another's 60 kB gets 452 4.3.1; the first still gets 250."""
    listening = make_listening(smtp_max_bytes_in_flight=100_000)
    gate = listening.server.gate
    with _session(listening) as first:
        for line in (f"MAIL FROM:<{CUSTOMER}>".encode(), f"RCPT TO:<{listening.reply_to}>".encode()):
            assert _say(first, line).startswith(b"250")
        assert _say(first, b"DATA").startswith(b"354")
        first.sendall(reply_to(listening) + (b"a" * 78 + b"\r\n") * 1000)
        wait_for(lambda: gate.bytes_in_flight >= 64 * 1024, what="the first message's bytes to be counted")
        with smtplib.SMTP("127.0.0.1", listening.port, timeout=10) as second:
            second.ehlo()
            second.mail(CUSTOMER)
            second.rcpt(listening.reply_to)
            code, text = second.data(reply_to(listening) + (b"b" * 78 + b"\r\n") * 750)
            assert (452, True) == (code, text.startswith(b"4.3.1"))
        first.sendall(b".\r\n")
        assert smtp_reply_of(first).startswith(b"250 2.0.0")
    assert 0 == gate.bytes_in_flight


def test_a_declared_size_is_reserved_whole_before_354(make_listening: MakeListening) -> None:
    """A sender declaring SIZE=150000 with 100 kB budget gets 452 4.3.1 at DATA, before sending its message;
    with SIZE=5000 it gets 354 and its 250."""
    listening = make_listening(smtp_max_bytes_in_flight=100_000)
    with smtplib.SMTP("127.0.0.1", listening.port, timeout=10) as smtp:
        smtp.ehlo()
        assert 250 == smtp.mail(CUSTOMER, options=["SIZE=150000"])[0]
        smtp.rcpt(listening.reply_to)
        with pytest.raises(smtplib.SMTPDataError) as refused:
            smtp.data(reply_to(listening))
        assert (452, True) == (refused.value.smtp_code, refused.value.smtp_error.startswith(b"4.3.1"))
        smtp.rset()
        assert 250 == smtp.mail(CUSTOMER, options=["SIZE=5000"])[0]
        smtp.rcpt(listening.reply_to)
        assert 250 == smtp.data(reply_to(listening))[0]
    assert 0 == listening.server.gate.bytes_in_flight


# -- answers: enhanced codes, nothing raw quoted back, overlong addresses --------------------------


def test_a_line_too_long_in_data_gets_500_552(make_listening: MakeListening) -> None:
    """A 2000-octet line in DATA: 500 5.5.2 once the message ends, nothing stored, the session goes on."""
    listening = make_listening()
    with smtplib.SMTP("127.0.0.1", listening.port, timeout=10) as smtp:
        smtp.ehlo()
        smtp.mail(CUSTOMER)
        smtp.rcpt(listening.reply_to)
        code, text = smtp.data(reply_to(listening) + b"z" * 2000 + b"\r\n")
        assert (500, True) == (code, text.startswith(b"5.5.2 Line too long"))
        assert 250 == smtp.noop()[0]
    assert listening.gw.inbound.get(1) is None


def test_a_command_line_too_long_gets_500_552(make_listening: MakeListening) -> None:
    """A 600-octet NOOP line gets 500 5.5.2."""
    listening = make_listening()
    with _session(listening) as sock:
        assert _say(sock, b"NOOP " + b"n" * 600).startswith(b"500 5.5.2")


@pytest.mark.parametrize("line", [
    b"RCPT TO:<sup\x00port@reply.example.test>",
    b"RCPT TO:<\"sup\x00port\"@reply.example.test>",
    b"RCPT TO:<\"sup\rport\"@reply.example.test>",
    b"RCPT TO:<\"sup\xffport\"@reply.example.test>",
    b"VR\x00FY x",
])
def test_error_replies_quote_no_raw_control_bytes(make_listening: MakeListening, line: bytes) -> None:
    """Whatever the argument holds, the reply is one line of printable characters (controls quoted as \\xNN)."""
    listening = make_listening()
    with _session(listening) as sock:
        assert _say(sock, f"MAIL FROM:<{CUSTOMER}>".encode()).startswith(b"250")
        answer = _say(sock, line)
        assert answer[:1] in (b"5", b"4"), answer
        assert answer.endswith(b"\r\n") and answer.count(b"\r") == 1 and answer.count(b"\n") == 1, answer
        assert not re.search(rb"[\x00-\x1f\x7f]", answer[:-2]), answer
        assert _say(sock, b"NOOP").startswith(b"250")


def test_overlong_sender_is_refused_at_mail_and_overlong_recipient_at_rcpt(make_listening: MakeListening) -> None:
    """A 377-character MAIL FROM gets 501 5.1.7 and a 377-character RCPT TO 501 5.1.3; the session goes on."""
    listening = make_listening()
    long_address = "a" * 64 + "@" + ("b" * 60 + ".") * 5 + "example"
    assert len(long_address) > 320
    with smtplib.SMTP("127.0.0.1", listening.port, timeout=10) as smtp:
        smtp.ehlo()
        code, text = smtp.mail(long_address)
        assert (501, b"5.1.7 Sender address too long: at most 320 characters") == (code, text)
        assert 250 == smtp.mail(CUSTOMER)[0]
        code, text = smtp.rcpt(long_address)
        assert (501, b"5.1.3 Recipient address too long: at most 320 characters") == (code, text)
        assert 250 == smtp.rcpt(listening.reply_to)[0]
        assert 250 == smtp.data(reply_to(listening))[0]


def test_large_messages_are_parsed_one_at_a_time_small_ones_are_not_held(
    tmp_path: Path, stub_broker: dramatiq.Broker
) -> None:
    """Two messages over LARGE_MESSAGE_BYTES processed from two threads never reach the extractor together;
    a small one is extracted while a large one is."""
    inside: list[str] = []
    overlaps: list[tuple[str, ...]] = []
    release = threading.Event()

    def extractor(text: str, html: str | None) -> Any:
        name = text.split()[0]
        inside.append(name)
        overlaps.append(tuple(inside))
        if name == "large-1":
            release.wait(DEADLINE)  # held until the small one got through
            # ... and then long enough for the second large one to be parsed and reach here, were it let through
            deadline = time.monotonic() + 3
            while "large-2" not in inside and time.monotonic() < deadline:
                time.sleep(0.01)
        inside.remove(name)
        return extract_reply(text, html)

    gw = build_gateway(settings_for(tmp_path), broker=stub_broker, extractor=extractor)
    ticket = open_ticket(gw)
    to = gw.keyring.address_for(ticket.key, ticket.customer.email)
    padding = b"x" * 76 + b"\r\n"

    def stored(name: str, size: int) -> int:
        raw = (f"From: Ada <{CUSTOMER}>\r\nTo: {to}\r\nSubject: Re: Printer\r\nMessage-ID: <{name}@example.test>\r\n"
               f"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\n"
               f"Content-Type: text/plain\r\n\r\n{name} says hello\r\n--b\r\nContent-Type: application/octet-stream\r\n"
               f"Content-Disposition: attachment; filename=\"pad.txt\"\r\n\r\n").encode()
        raw += padding * (size // len(padding)) + b"--b--\r\n"
        return gw.inbound.save_raw(mail_from=CUSTOMER, rcpt_to=(to,), raw=raw, now=NOW)

    large = [stored(f"large-{n}", LARGE_MESSAGE_BYTES + 1000) for n in (1, 2)]
    small = stored("small", 1000)
    threads = [threading.Thread(target=gw.pipeline.process, args=(pk,)) for pk in large]
    threads[0].start()
    wait_for(lambda: "large-1" in inside, what="the first large message to be extracted")
    threads[1].start()
    gw.pipeline.process(small)  # not held back by the large lane
    release.set()
    for thread in threads:
        thread.join(DEADLINE)
    assert ("large-1", "small") in overlaps
    assert not any("large-1" in seen and "large-2" in seen for seen in overlaps)
    assert ["landed"] * 3 == [str(gw.inbound.get(pk).status.value) for pk in [*large, small]]  # type: ignore[union-attr]
