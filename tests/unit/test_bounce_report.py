"""Bounces in the shapes real MTAs write are read right: kind, failed recipient, status (pure).

The samples in ``tests/corpus/bounces`` were written for this project in the shapes Postfix,
Exim, Sendmail, qmail, Exchange/Office 365, Gmail, Yahoo, Amazon SES and a Japanese carrier
produce, plus an ARF complaint, an out-of-office reply and a delayed-delivery warning.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from inbound.bounce_report import BounceKind, kind_for_status, read_bounce

SAMPLES = Path(__file__).parent.parent / "corpus" / "bounces"
ADA = "ada@customer.example.test"


def sample(name: str, *, crlf: bool = True) -> bytes:
    data = (SAMPLES / name).read_bytes().replace(b"\r\n", b"\n")
    return data.replace(b"\n", b"\r\n") if crlf else data


@pytest.mark.parametrize(
    ("name", "kind", "status"),
    [
        ("postfix.eml", BounceKind.HARD, "5.1.1"),
        ("exim.eml", BounceKind.HARD, "5.0.0"),
        ("exim_plain.eml", BounceKind.SOFT, ""),
        ("sendmail.eml", BounceKind.HARD, "5.1.1"),
        ("qmail.eml", BounceKind.HARD, "5.1.1"),
        ("exchange.eml", BounceKind.HARD, "5.1.10"),
        ("gmail.eml", BounceKind.HARD, "5.1.1"),
        ("yahoo.eml", BounceKind.HARD, "554"),
        ("ses.eml", BounceKind.HARD, "5.1.1"),
        ("mailbox_full.eml", BounceKind.SOFT, "5.2.2"),
        ("japanese_carrier.eml", BounceKind.HARD, "550"),
        ("arf_complaint.eml", BounceKind.COMPLAINT, ""),
    ],
)
def test_each_mta_shape_names_the_failed_recipient_and_how_it_failed(name: str, kind: BounceKind, status: str) -> None:
    """The report's kind, and for Ada her kind and status code, as the MTA meant them."""
    report = read_bounce(sample(name))
    assert kind == report.kind
    ada = report.for_address(ADA)
    assert ada is not None, report
    assert (kind, status) == (ada.kind, ada.status)


@pytest.mark.parametrize("name", ["out_of_office.eml"])
def test_an_auto_reply_is_no_bounce(name: str) -> None:
    """An out-of-office answer reports no failure."""
    assert BounceKind.NOT_A_BOUNCE == read_bounce(sample(name)).kind


def test_a_delayed_delivery_warning_is_no_failure() -> None:
    """'Delayed Mail (still being retried)' is a delay, with nobody failed."""
    report = read_bounce(sample("delayed.eml"))
    assert (BounceKind.DELAYED, ()) == (report.kind, report.recipients)


@pytest.mark.parametrize("name", ["postfix.eml", "qmail.eml", "yahoo.eml"])
def test_bare_line_ends_read_the_same(name: str) -> None:
    """The same bounce with bare LF or bare CR line ends reads as with CRLF."""
    expected = read_bounce(sample(name))
    assert expected == read_bounce(sample(name, crlf=False))
    assert expected == read_bounce(sample(name, crlf=False).replace(b"\n", b"\r"))


@pytest.mark.parametrize(
    ("status", "words", "kind"),
    [
        ("5.1.1", "", BounceKind.HARD),
        ("5.1.2", "", BounceKind.HARD),
        ("5.4.4", "", BounceKind.HARD),
        ("5.2.2", "", BounceKind.SOFT),
        ("5.3.4", "message too big", BounceKind.SOFT),
        ("5.7.1", "blocked as spam", BounceKind.SOFT),
        ("4.2.2", "", BounceKind.SOFT),
        ("5.0.0", "User unknown", BounceKind.HARD),
        ("5.0.0", "Mailbox quota exceeded", BounceKind.SOFT),
        ("550", "no such user here", BounceKind.HARD),
        ("", "Mailbox full", BounceKind.SOFT),
    ],
)
def test_status_codes_and_words_decide_hard_or_soft(status: str, words: str, kind: BounceKind) -> None:
    """RFC 3463 classes first: 5.1.x and 5.4.4 hard; full, too big, policy and 4.x.x soft; words decide 5.0.0."""
    assert kind == kind_for_status(status, words)


def test_garbage_is_no_bounce() -> None:
    """Bytes that are no email at all report nothing and raise nothing."""
    assert BounceKind.NOT_A_BOUNCE == read_bounce(b"\x00\xff\xfe not an email").kind
