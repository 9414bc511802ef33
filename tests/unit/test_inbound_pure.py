"""The pure inbound modules: classification, sender verification, threading, charsets, the rejection table."""

from __future__ import annotations

import base64

import pytest

import gateway.errors as errors
from inbound.charsets import decode_text
from inbound.classify import MessageKind, classify
from inbound.parse import ParsedEmail, parse_email
from inbound.rejections import REJECTIONS, smtp_reply
from inbound.thread import ThreadSignal, choose_thread
from inbound.verify import check_sender, same_address


def message(headers: str = "", subject: str = "Re: hello", sender: str = "ada@example.com") -> ParsedEmail:
    raw = f"From: {sender}\r\nTo: x@example.org\r\nSubject: {subject}\r\n{headers}\r\nhello\r\n"
    return parse_email(raw.encode())


@pytest.mark.parametrize(
    ("headers", "subject", "expected"),
    [
        ("", "Re: hello", MessageKind.REPLY),
        ("Auto-Submitted: no\r\n", "Re: hello", MessageKind.REPLY),
        ("Auto-Submitted: auto-replied; owner-email=a@b.c\r\n", "Re: hello", MessageKind.AUTO_REPLY),
        ("X-Autoreply: yes\r\n", "Re: hello", MessageKind.AUTO_REPLY),
        ("X-Autorespond: on\r\n", "Re: hello", MessageKind.AUTO_REPLY),
        ("Precedence: bulk\r\n", "Re: hello", MessageKind.AUTO_REPLY),
        ("Precedence: list\r\n", "Re: hello", MessageKind.AUTO_REPLY),
        ("Precedence: first-class\r\n", "Re: hello", MessageKind.REPLY),
        ("", "Abwesenheitsnotiz: Re: hello", MessageKind.AUTO_REPLY),
        ("", "Fuera de la oficina", MessageKind.AUTO_REPLY),
        ("", "自動応答: Re: hello", MessageKind.AUTO_REPLY),
        ("", "Out of Office: back Monday", MessageKind.AUTO_REPLY),
    ],
)
def test_classify_auto_replies(headers: str, subject: str, expected: MessageKind) -> None:
    """Auto-Submitted other than no, vendor headers, machine Precedence and out-of-office subjects are auto-replies."""
    assert expected == classify(message(headers, subject), mail_from="ada@example.com").kind


def test_mailer_daemon_and_null_return_path_are_bounces() -> None:
    """A mailer-daemon sender, or a null envelope sender, is a bounce; unknown envelope (HTTP) is not."""
    assert MessageKind.BOUNCE == classify(message(sender="MAILER-DAEMON@mx.example.org"), mail_from="").kind
    assert MessageKind.BOUNCE == classify(message(), mail_from="<>").kind
    assert MessageKind.REPLY == classify(message(), mail_from=None).kind


def test_exim_failed_recipients_header_is_read() -> None:
    """Exim's X-Failed-Recipients names the addresses a bounce reports."""
    bounce = message("X-Failed-Recipients: Gone@Example.com\r\n", "Mail delivery failed", "mailer-daemon@mx.test")
    assert ("gone@example.com",) == classify(bounce, mail_from="").failed


def test_x_failed_recipients_alone_marks_a_bounce() -> None:
    """Only bounces carry X-Failed-Recipients: such a message never lands as a reply, whoever claims to send it."""
    mail = message("X-Failed-Recipients: gone@example.com\r\n", "Hello", "ada@example.com")
    assert MessageKind.BOUNCE == classify(mail, mail_from="ada@example.com").kind


def test_same_address_ignores_case_and_spaces() -> None:
    """Address comparison is case-insensitive after normalising."""
    assert same_address(" Ada@Example.COM ", "ada@example.com")
    assert not same_address("ada@example.com.evil.test", "ada@example.com")
    assert not same_address(None, "ada@example.com")


def test_dmarc_verdict_only_from_the_trusted_server() -> None:
    """dmarc=fail counts only in the Authentication-Results of the trusted authserv-id."""
    failed = message("Authentication-Results: mx.trusted.test; dmarc=fail header.from=example.com\r\n")
    assert isinstance(check_sender(failed, customer_email="ada@example.com", trusted_authserv_id="mx.trusted.test"),
                      errors.DmarcFailed)
    assert check_sender(failed, customer_email="ada@example.com", trusted_authserv_id="mx.other.test") is None
    assert check_sender(failed, customer_email="ada@example.com", trusted_authserv_id=None) is None
    assert isinstance(check_sender(failed, customer_email="bob@example.com", trusted_authserv_id=None),
                      errors.SenderNotCustomer)


def test_thread_prefers_the_token_then_in_reply_to_then_newest_reference() -> None:
    """The token wins; without it In-Reply-To, then the newest References id we sent."""
    sent = {"<a@us>": 1, "<b@us>": 2, "<c@us>": 3}
    token = choose_thread(token_tickets=[9], in_reply_to=["<a@us>"], references=[], sent_ids=sent)
    assert (9, ThreadSignal.TOKEN) == ((token.ticket_key, token.signal) if token else None)
    irt = choose_thread(token_tickets=[], in_reply_to=["<x@them>", "<b@us>"], references=["<a@us>"], sent_ids=sent)
    assert (2, ThreadSignal.IN_REPLY_TO) == ((irt.ticket_key, irt.signal) if irt else None)
    refs = choose_thread(token_tickets=[], in_reply_to=[], references=["<a@us>", "<c@us>", "<z@them>"], sent_ids=sent)
    assert (3, ThreadSignal.REFERENCES) == ((refs.ticket_key, refs.signal) if refs else None)
    assert choose_thread(token_tickets=[], in_reply_to=["<z@them>"], references=[], sent_ids=sent) is None


@pytest.mark.parametrize(
    ("data", "label", "expected"),
    [
        ("Grüße".encode("cp1252"), "iso-8859-1", "Grüße"),
        ("Grüße".encode(), "iso-8859-1", "Grüße"),  # UTF-8 labelled Latin-1
        ("Grüße".encode(), None, "Grüße"),
        ("“quoted”".encode("cp1252"), "us-ascii", "“quoted”"),  # Windows-1252 labelled ASCII
        ("안녕하세요".encode("cp949"), "ks_c_5601-1987", "안녕하세요"),
        ("日本語".encode("shift_jis"), "x-sjis", "日本語"),
        ("Grüße".encode(), "x-unknown-vendor", "Grüße"),
    ],
)
def test_decode_text_survives_wrong_and_missing_labels(data: bytes, label: str | None, expected: str) -> None:
    """Text decodes right with a wrong, missing, vendor or unknown charset label."""
    assert expected == decode_text(data, label)


def test_every_inbound_error_has_a_row_in_the_rejection_table() -> None:
    """Each InboundError subclass maps to an SMTP reply or to silence; SMTP-time ones carry an enhanced code."""
    kinds = [c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, errors.InboundError)]
    missing = [c.__name__ for c in kinds if c is not errors.InboundError and c not in REJECTIONS]
    assert [] == missing
    assert "550 5.1.1 <x@y.z> is not ours" == smtp_reply(errors.UnknownRecipient("<x@y.z> is not ours"))
    assert smtp_reply(errors.AutoReply("x")) is None


def test_broken_base64_in_a_text_part_is_undecodable_not_garbage() -> None:
    """A text part whose base64 is broken is refused as malformed (recorded, never landed as noise);
    valid base64 without its final padding still reads."""
    head = "From: a@b.c\r\nTo: x@y.z\r\nSubject: s\r\nContent-Type: text/plain; charset=utf-8\r\n"
    head += "Content-Transfer-Encoding: base64\r\n\r\n"
    assert "Hello world" == parse_email((head + "SGVsbG8gd29y\r\nbGQ\r\n").encode()).text
    with pytest.raises(errors.MalformedMessage, match="not valid base64"):
        parse_email((head + "this is not base64 at all, sorry\r\n").encode())


@pytest.mark.parametrize(("body", "size"), [
    (base64.encodebytes(bytes(range(256)) * 40).replace(b"\n", b"\r\n"), 10240),
    (b"QUJD\r\nREVG\r\nRw", 7),  # no padding
    (b"QUJDREVGRw==\r\n", 7),
    (b"QUJD!REVG Rw==\r\n", 7),  # a stray character is skipped
    (b"QUJD\r\n=\r\nREVG\r\n", 6),  # padding in the middle: decoded, the way a2b_base64 reads it
    (b"QUJDR\r\n", 7),  # not base64 (one character too many): the bytes as they are
])
def test_an_attachment_is_measured_as_its_decoded_size(body: bytes, size: int) -> None:
    """An attachment's size is what its base64 decodes to (counted, not decoded, for a large one)."""
    raw = (b"From: a@b.c\r\nSubject: s\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"
           b"--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b\r\nContent-Type: application/octet-stream\r\n"
           b"Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"x.bin\"\r\n\r\n"
           + body + b"\r\n--b--\r\n")
    assert [size] == [a.size for a in parse_email(raw).attachments]
