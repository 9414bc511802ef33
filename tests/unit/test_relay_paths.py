"""The relay client writes MAIL FROM / RCPT TO paths exactly as smtplib would, without its parse for plain addresses."""

from __future__ import annotations

import smtplib

from hypothesis import example, given
from hypothesis import strategies as st

from outbound.relay import smtp_path

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
