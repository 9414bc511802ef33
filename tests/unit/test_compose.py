"""Composition writes headers the stdlib would write and parses back with its strict policy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from email import message_from_bytes
from email.policy import strict
from email.utils import format_datetime, parsedate_to_datetime

from hypothesis import given
from hypothesis import strategies as st

from outbound.compose import Envelope, compose, rfc5322_date
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
