"""Composition writes headers the stdlib would write and parses back with its strict policy."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from email import message_from_bytes
from email.policy import strict
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from outbound.compose import Envelope, compose, one_line, rfc5322_date
from outbound.render import RenderedEmail


@given(st.datetimes(min_value=datetime(1900, 1, 1), timezones=st.just(UTC)))
def test_date_header_is_what_the_stdlib_writes(moment: datetime) -> None:
    """Any UTC moment: the same text as ``email.utils.format_datetime``, and it reads back to the second."""
    assert format_datetime(moment) == rfc5322_date(moment)
    assert moment.replace(microsecond=0) == parsedate_to_datetime(rfc5322_date(moment))


def test_a_moment_in_another_zone_keeps_its_offset() -> None:
    """Not UTC: written with its own offset, as the stdlib does."""
    moment = datetime(2026, 11, 26, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    assert "Thu, 26 Nov 2026 14:00:00 +0200" == rfc5322_date(moment)


def test_composed_email_carries_the_date_and_parses_strictly() -> None:
    """The full message parses with the strict policy and its Date is the moment given."""
    moment = datetime(2026, 11, 26, 9, 5, 3, 250000, tzinfo=UTC)
    raw = compose(
        RenderedEmail(subject="Ticket T-1", text=".dot line\nbody", html="<p>body</p>"),
        Envelope(from_addr="Web2Chat <support@example.test>", to_addr="ada@example.test", to_name="Ada",
                 reply_to="reply+abc@example.test", message_id="<m1@example.test>", date=moment),
    )
    message = message_from_bytes(raw, policy=strict)
    assert "Thu, 26 Nov 2026 09:05:03 +0000" == message["Date"]
    assert moment.replace(microsecond=0) == message["Date"].datetime


def parts(text: str, html: str = "<p>hi</p>") -> list[tuple[str, str]]:
    """(transfer encoding, decoded content) of the text and HTML parts of a composed email."""
    raw = compose(
        RenderedEmail(subject="s", text=text, html=html),
        Envelope(from_addr="support@example.test", to_addr="ada@example.test", to_name="Ada",
                 reply_to="reply+abc@example.test", message_id="<m1@example.test>",
                 date=datetime(2026, 11, 26, tzinfo=UTC)),
    )
    message = message_from_bytes(raw, policy=strict)
    return [
        (p["Content-Transfer-Encoding"], p.get_content().replace("\r\n", "\n"))
        for p in message.iter_parts()  # type: ignore[attr-defined]
    ]


def test_ascii_bodies_with_short_lines_go_as_they_are() -> None:
    """Plain ASCII text and HTML travel 7bit: readable source, no ``=3D`` in every attribute."""
    assert [("7bit", "Hello Ada,\nyour ticket."), ("7bit", '<p style="color:red">hi</p>')] == parts(
        "Hello Ada,\nyour ticket.", '<p style="color:red">hi</p>'
    )


def test_bodies_that_cannot_go_7bit_are_quoted_printable() -> None:
    """Non-ASCII, a line over 998 characters, a NUL or the boundary itself: quoted-printable, content intact."""
    long_line = "x" * 1200
    boundary = "=_w2c_" + __import__("hashlib").sha256(b"<m1@example.test>").hexdigest()[:32]
    for text in ("Grüße, Ada", long_line, "a\0b", f"--{boundary}\nsneaky"):
        (encoding, content), _ = parts(text)
        assert ("quoted-printable", text) == (encoding, content)


@given(st.text(st.characters(blacklist_categories=("Cs",)), max_size=300))
def test_any_text_reads_back_as_written(text: str) -> None:
    """Whatever the text (line ends normalised to LF), the parsed part holds it."""
    expected = text.replace("\r\n", "\n").replace("\r", "\n")
    (_, content), _ = parts(text)
    assert expected == content


@given(st.text(max_size=60))
def test_one_line_folds_every_line_break_and_run_of_blanks(value: str) -> None:
    """Any text: no control character or line break left, no leading, trailing or double blank,
    the words kept (what a header value needs)."""
    folded = one_line(value)
    assert folded == " ".join(re.sub(r"[\x00-\x1f\x7f]+", " ", value).split())
    assert "\r" not in folded and "\n" not in folded


def composed(subject: str, to_name: str) -> object:
    """A composed email with ``subject`` and ``to_name``, parsed back as a decoding client would."""
    raw = compose(
        RenderedEmail(subject=subject, text="hi", html="<p>hi</p>"),
        Envelope(from_addr="support@example.test", to_addr="ada@example.test", to_name=to_name,
                 reply_to="reply+abc@example.test", message_id="<m1@example.test>",
                 date=datetime(2026, 11, 26, tzinfo=UTC)),
    )
    return message_from_bytes(raw, policy=strict)


def test_text_that_looks_like_an_encoded_word_is_shown_as_written() -> None:
    """A title or name carrying an RFC 2047 encoded word is encoded itself: a decoding client shows
    the literal text, never a decoded CR/LF and a fake Bcc line."""
    trick = "=?utf-8?q?Security_alert=0D=0ABcc:_x@y?="
    message: Any = composed(f"[#T-1] {trick}", trick)
    assert f"[#T-1] {trick}" == message["Subject"]
    assert trick == message["To"].addresses[0].display_name
    assert message["Bcc"] is None


def test_bidi_controls_never_reach_a_header() -> None:
    """A right-to-left override in a title or name is dropped from Subject and To."""
    message: Any = composed("Invoice \u202egpj.exe", "Ada \u202eLovelace\u2066")
    assert "Invoice gpj.exe" == message["Subject"]
    assert "Ada Lovelace" == message["To"].addresses[0].display_name
