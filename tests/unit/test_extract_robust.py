"""Reply extraction never fails, whatever text a decoder hands it."""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from inbound.extract import extract_reply

_lines = st.lists(
    st.one_of(
        st.text(max_size=40),
        st.text(alphabet="\t\x0b\x0c\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2028\u2029\u202f\u205f\u3000\u200b\ufeff"),
        st.sampled_from(["> quoted", "-- ", "On Mon, 1 Jan 2024, A <a@b.c> wrote:", "From: A <a@b.c>", "Sent: x"]),
    ),
    max_size=30,
)


@settings(max_examples=300, deadline=None)
@given(_lines, st.one_of(st.none(), st.text(max_size=200)))
@example(["hello there", "\x85"], None)  # cp1252 '…' decoded as latin-1: once an IndexError
@example(["hi", "\u2028", "there"], None)
def test_extract_reply_never_raises(lines: list[str], html: str | None) -> None:
    """Any text, including lines of exotic whitespace, gives a result whose parts are strings."""
    result = extract_reply("\n".join(lines), html)
    assert isinstance(result.text, str)
    assert isinstance(result.signature, str)
    assert isinstance(result.rule, str)
