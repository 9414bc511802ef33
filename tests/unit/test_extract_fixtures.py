"""Golden pairs: every email in tests/fixtures/replies yields its expected reply text."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from inbound.extract import extract_reply

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "replies"
EXPECTED_SUFFIX = ".expected.txt"


def _emails() -> list[Path]:
    return sorted(
        p for p in FIXTURES.iterdir()
        if p.suffix in (".txt", ".html") and not p.name.endswith(EXPECTED_SUFFIX)
    )


def _expected_path(email: Path) -> Path:
    return email.with_name(email.stem + EXPECTED_SUFFIX)


def test_fixture_folders_stay_paired() -> None:
    """Every email has an expected file and every expected file has an email."""
    emails = {p.stem for p in _emails()}
    expected = {p.name[: -len(EXPECTED_SUFFIX)] for p in FIXTURES.glob("*" + EXPECTED_SUFFIX)}
    assert set() == emails ^ expected


@pytest.mark.parametrize("email", _emails(), ids=lambda p: p.name)
def test_fixture_reply_text(email: Path) -> None:
    """The reply text extracted from the email equals the expected file."""
    body = email.read_text(encoding="utf-8")
    expected = _expected_path(email).read_text(encoding="utf-8").rstrip("\n")
    result = extract_reply("", body) if email.suffix == ".html" else extract_reply(body)
    assert expected == result.text


@pytest.mark.parametrize("email", _emails(), ids=lambda p: p.name)
def test_fixture_loses_no_line(email: Path) -> None:
    """Text, signature and quoted together hold exactly the words of a text email."""
    if email.suffix == ".html":
        pytest.skip("HTML is re-rendered, lines are not comparable")
    body = email.read_text(encoding="utf-8")
    result = extract_reply(body)
    out = "\n".join((result.text, result.signature, result.quoted))
    assert Counter(re.findall(r"\w+", body)) == Counter(re.findall(r"\w+", out))
