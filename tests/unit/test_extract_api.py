"""The public surface of reply extraction: names, result shape, purity."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

import inbound
from inbound.extract import REPLY_ABOVE_MARKER, ExtractedReply, extract_reply


def test_package_reexports_extract_reply() -> None:
    """`inbound` re-exports the extractor and its result type."""
    assert extract_reply is inbound.extract_reply
    assert ExtractedReply is inbound.ExtractedReply


def test_result_is_frozen() -> None:
    """The result is an immutable value."""
    result = extract_reply("Hello")
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.text = "changed"  # type: ignore[misc]


def test_plain_reply_is_kept_whole() -> None:
    """A reply without history comes back unchanged, with rule no_quote."""
    assert ExtractedReply("Hello there,\n\nit works now.", "", "", "no_quote") == extract_reply(
        "\n\nHello there,\n\nit works now.\n\n"
    )


def test_empty_input_gives_empty_reply() -> None:
    """Empty text is not an error."""
    assert ExtractedReply("", "", "", "no_quote") == extract_reply("")


def test_crlf_is_handled() -> None:
    """CRLF line endings cut like LF ones."""
    result = extract_reply("Yes.\r\n\r\nOn Mon, 1 Jan 2024 at 10:00, Ann <ann@example.org> wrote:\r\n> Ok?\r\n")
    assert "Yes." == result.text
    assert "on_wrote_header" == result.rule


def test_marker_constant_is_verbatim() -> None:
    """The outbound templates rely on this exact marker text."""
    assert "##- Please type your reply above this line -##" == REPLY_ABOVE_MARKER


def test_module_imports_no_heavy_dependencies() -> None:
    """Importing the extractor pulls in neither flanker, sqlalchemy nor gateway."""
    code = (
        "import sys, inbound.extract; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('flanker', 'sqlalchemy', 'gateway')]; "
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "" == out.stdout.strip()
