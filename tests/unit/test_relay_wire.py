"""The relay client writes what smtplib would: MAIL FROM / RCPT TO paths (without its address parse
for plain addresses) and the dot-stuffed message after DATA (without its regex)."""

from __future__ import annotations

import re
import smtplib

from hypothesis import example, given
from hypothesis import strategies as st

from outbound.relay import smtp_path, with_end_of_data

ADDRESS_CHARS = st.sampled_from([*"abcXYZ019.-_+=@<> \"'()\\,:;[]\t\u00e9"])


@given(st.text(ADDRESS_CHARS, max_size=40))
@example("ada@example.com")
@example("support@localhost")
@example("Ada.Lovelace+tickets@mail.example.co.uk")
@example("Ada <ada@example.com>")
@example('"ada lovelace"@example.com')
@example("ada@example.com (Ada)")
@example("<>")
@example("a..b@example.com")
@example("\u00e9l\u00e8ve@exemple.fr")
def test_path_is_what_smtplib_would_write(address: str) -> None:
    """Any string, plain address or not, gives the same ``<...>`` path as ``smtplib.quoteaddr``."""
    assert smtplib.quoteaddr(address) == smtp_path(address)


def smtplib_data(raw: bytes) -> bytes:
    """What ``smtplib.SMTP.data`` sends for ``raw`` (its dot-stuffing and end of data)."""
    stuffed = re.sub(rb"(?m)^\.", b"..", raw)
    return stuffed + (b"" if stuffed[-2:] == b"\r\n" else b"\r\n") + b".\r\n"


LINES = st.lists(st.sampled_from([b".", b"..", b"a", b"\r\n", b"\n", b"\r", b" "])).map(b"".join)


@given(st.binary(max_size=200) | LINES)
@example(b".starts with a dot\r\n")
@example(b"line\r\n.\r\nafter a lone dot\r\n")
@example(b"no line end at the end.")
@example(b"")
def test_data_is_dot_stuffed_and_ended_as_smtplib_would(raw: bytes) -> None:
    """Any message gives the same bytes on the wire as smtplib's ``data()``."""
    assert smtplib_data(raw) == with_end_of_data(raw)
