"""Optional modes of the inbound SMTP server: its announced name, STARTTLS with a configured certificate, LMTP,
SO_REUSEPORT."""

from __future__ import annotations

import datetime as dt
import smtplib
import socket
import ssl
from collections.abc import Callable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.helpers import CUSTOMER, Listening, reply_to, settings_for, start_listener, stored_id, wait_for

MakeListening = Callable[..., Listening]


def self_signed(directory: Path) -> tuple[str, str]:
    """A throwaway certificate and key for 127.0.0.1, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mx.example.test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1)).sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ))
    return str(cert_file), str(key_file)


def test_starttls_with_the_configured_certificate(make_listening: MakeListening, tmp_path: Path) -> None:
    """With a certificate and key configured, EHLO offers STARTTLS and a reply sent over TLS is stored."""
    cert, key = self_signed(tmp_path)
    listening = make_listening(settings_for(tmp_path, smtp_tls_cert=cert, smtp_tls_key=key))
    client = ssl.create_default_context(cafile=cert)
    client.check_hostname = False
    with smtplib.SMTP("127.0.0.1", listening.port, timeout=10) as smtp:
        smtp.ehlo()
        assert smtp.has_extn("starttls")
        assert 220 == smtp.starttls(context=client)[0]
        smtp.ehlo()
        smtp.mail(CUSTOMER)
        smtp.rcpt(listening.reply_to)
        code, text = smtp.data(reply_to(listening))
        cipher = smtp.sock.cipher()  # type: ignore[union-attr]
    assert 250 == code
    assert cipher is not None
    assert listening.gw.inbound.get(stored_id(text)) is not None


def test_stop_while_a_tls_session_is_closing_does_not_raise(make_listening: MakeListening, tmp_path: Path) -> None:
    """QUIT after STARTTLS: aiosmtpd closes its TLS transport (twice, which leaves it unable to take writes) and
    waits for the client's TLS close. A stop in that window neither writes to that transport nor raises."""
    cert, key = self_signed(tmp_path)
    listening = make_listening(settings_for(tmp_path, smtp_tls_cert=cert, smtp_tls_key=key))
    client = ssl.create_default_context(cafile=cert)
    client.check_hostname = False
    smtp = smtplib.SMTP("127.0.0.1", listening.port, timeout=10)
    try:
        smtp.ehlo()
        smtp.starttls(context=client)
        smtp.ehlo()
        smtp.putcmd("quit")
        assert 221 == smtp.getreply()[0]  # and the client neither answers the TLS close nor closes its socket

        def closing() -> bool:
            return any(c.transport is not None and c.transport.is_closing() for c in listening.server.gate.open)

        wait_for(closing, what="the server to close the TLS session")
        listening.server.stop()
    finally:
        smtp.close()


def test_without_a_certificate_starttls_is_not_offered(make_listening: MakeListening) -> None:
    """No certificate configured: no STARTTLS in EHLO."""
    listening = make_listening()
    with smtplib.SMTP("127.0.0.1", listening.port, timeout=10) as smtp:
        smtp.ehlo()
        assert not smtp.has_extn("starttls")


def test_lmtp_mode_answers_data_once_per_recipient(make_listening: MakeListening, tmp_path: Path) -> None:
    """In LMTP mode, LHLO is the greeting and DATA gets one 250 per accepted recipient (RFC 2033)."""
    listening = make_listening(settings_for(tmp_path, smtp_lmtp=True))
    with smtplib.LMTP("127.0.0.1", listening.port, timeout=10) as lmtp:
        assert 250 == lmtp.ehlo()[0]  # smtplib's LMTP sends LHLO here
        assert 250 == lmtp.mail(CUSTOMER)[0]
        assert 250 == lmtp.rcpt(listening.reply_to)[0]
        assert 550 == lmtp.rcpt("someone@" + listening.reply_to.split("@")[1])[0]
        assert 250 == lmtp.rcpt(listening.reply_to.upper())[0]
        first = lmtp.data(reply_to(listening))
        second = lmtp.getreply()
    assert (250, 250) == (first[0], second[0])
    assert stored_id(first[1]) == stored_id(second[1])


def test_several_listeners_share_one_port_with_so_reuseport(make_listening: MakeListening, tmp_path: Path) -> None:
    """With GATEWAY_SMTP_PROCESSES > 1 listeners bind with SO_REUSEPORT: two on one port both start and serve."""
    settings = settings_for(tmp_path, smtp_processes=2)
    first = make_listening(settings)
    second = start_listener(first.gw, first.ticket)  # as a second process would
    try:
        assert first.port == second.port == settings.smtp_port
        for _ in range(6):
            with smtplib.SMTP("127.0.0.1", settings.smtp_port, timeout=10) as smtp:
                assert 250 == smtp.noop()[0]
    finally:
        second.server.stop()  # the first's fixture stops the shared committer


def test_the_greeting_and_ehlo_give_the_configured_hostname_and_no_version(
    make_listening: MakeListening, tmp_path: Path
) -> None:
    """GATEWAY_SMTP_HOSTNAME is the name in the greeting and the EHLO answer; the greeting names no software."""
    listening = make_listening(settings_for(tmp_path, smtp_hostname="mx.example.test"))
    with smtplib.SMTP(timeout=10) as smtp:
        greeting = smtp.connect("127.0.0.1", listening.port)
        ehlo = smtp.ehlo("client.example.test")
    assert (220, b"mx.example.test ESMTP") == greeting
    assert b"mx.example.test" == ehlo[1].splitlines()[0]


def test_the_greeting_defaults_to_the_machines_fqdn(make_listening: MakeListening, tmp_path: Path) -> None:
    """Without GATEWAY_SMTP_HOSTNAME the greeting gives the machine's FQDN, still without a version."""
    listening = make_listening()
    with smtplib.SMTP(timeout=10) as smtp:
        greeting = smtp.connect("127.0.0.1", listening.port)
    assert (220, f"{socket.getfqdn()} ESMTP".encode()) == greeting
