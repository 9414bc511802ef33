"""The reply-above marker in each language: every email carries its customer's, the extractor knows them all."""

from __future__ import annotations

import pytest

from inbound.extract import REPLY_ABOVE_MARKER, REPLY_ABOVE_MARKERS, extract_reply
from outbound.render import Branding, Renderer, find_templates
from outbound.samples import sample_context

RENDERER = Renderer(find_templates(), branding=Branding(), markers=REPLY_ABOVE_MARKERS, messenger_url="https://m/")
MARKERS = sorted(REPLY_ABOVE_MARKERS.items())
NEW = "Yes, that fixed it.\nThe pages print again."


def test_every_email_language_has_a_marker() -> None:
    """Each locale the emails are written in has its own marker line, and the English one is the constant."""
    assert set(RENDERER.locales) == set(REPLY_ABOVE_MARKERS)
    assert REPLY_ABOVE_MARKER == REPLY_ABOVE_MARKERS["en"]
    assert len(REPLY_ABOVE_MARKERS) == len(set(REPLY_ABOVE_MARKERS.values()))
    for marker in REPLY_ABOVE_MARKERS.values():
        assert marker.startswith("##- ") and marker.endswith(" -##")


@pytest.mark.parametrize(("locale", "marker"), MARKERS)
def test_each_email_carries_its_languages_marker(locale: str, marker: str) -> None:
    """The text part starts with the customer's language's marker; the HTML shows it above everything."""
    email = RENDERER.render("teammate_reply", locale, sample_context("teammate_reply", locale))
    assert email.text.startswith(marker + "\n")
    assert marker in email.html


@pytest.mark.parametrize(("locale", "marker"), MARKERS)
@pytest.mark.parametrize(
    "shape",
    [
        "{new}\n\n{marker}\n\nHi Ada,\nold words\n",
        "{new}\n\nOn Thu, 26 Nov 2026 at 10:00, Support <s@x.test> wrote:\n> {marker}\n>\n> old words\n",
        "{new}\n\n> {upper}\n> old words\n",
        "{new}\n\n> {wrapped}\n> old words\n",
    ],
    ids=["plain", "quoted", "upper-case", "wrapped"],
)
def test_the_extractor_recognises_every_languages_marker(locale: str, marker: str, shape: str) -> None:
    """Whatever the language, only the words above the marker land (plain, quoted, re-cased or wrapped)."""
    words = marker.split()
    middle = len(words) // 2 if len(words) > 3 else 1
    wrapped = " ".join(words[:middle]) + "\n> " + " ".join(words[middle:])
    body = shape.format(new=NEW, marker=marker, upper=marker.upper(), wrapped=wrapped)
    reply = extract_reply(body)
    assert (NEW, "gateway_marker") == (reply.text, reply.rule)
    assert "old words" in reply.quoted


def test_hashes_without_the_marker_words_are_text() -> None:
    """A "##" heading or a half marker in the customer's words is not a marker."""
    body = "## Steps\n1. open\n##- Please type -##\nstill mine\n"
    assert "gateway_marker" != extract_reply(body).rule
    assert "still mine" in extract_reply(body).text
