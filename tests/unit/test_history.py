"""The conversation so far in reply and state-change emails: capped, newest first, only what the customer sees."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gateway.models import EntryKind
from inbound.extract import REPLY_ABOVE_MARKERS
from outbound.history import HistoryEntry, HistoryLimits, recent_history
from outbound.render import Branding, Renderer, find_templates
from outbound.samples import sample_context, sample_history

AT = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
RENDERER = Renderer(find_templates(), branding=Branding(), markers=REPLY_ABOVE_MARKERS, messenger_url="https://m/")
HEADINGS = {"en": "The conversation so far (newest first)", "de": "Der bisherige Verlauf (neueste zuerst)",
            "ar": "المحادثة حتى الآن (الأحدث أولًا)", "ja": "これまでのやり取り（新しい順）"}


def entry(key: int, text: str, kind: EntryKind = EntryKind.CUSTOMER_REPLY) -> HistoryEntry:
    return HistoryEntry(key=key, kind=kind, text=text, created_at=AT + timedelta(minutes=key))


def test_entries_are_capped_and_the_rest_counted() -> None:
    """At most max_entries are shown, newest first as given; the others are counted as hidden."""
    newest_first = [entry(k, f"entry {k}") for k in (9, 8, 7, 6)]
    history = recent_history(newest_first, total=9, limits=HistoryLimits(max_entries=3, max_chars=1000))
    assert [9, 8, 7] == [e.key for e in history.entries]
    assert 6 == history.hidden


def test_characters_are_capped_at_a_word_with_an_ellipsis() -> None:
    """The entry crossing the character cap is cut at a word boundary; the ones after it are left out."""
    newest_first = [entry(3, "short one"), entry(2, "word " * 100), entry(1, "older")]
    history = recent_history(newest_first, total=3, limits=HistoryLimits(max_entries=5, max_chars=60))
    assert [3, 2] == [e.key for e in history.entries]
    cut = history.entries[1].text
    assert cut.endswith("word…") and len(cut) <= 52
    assert 1 == history.hidden


def test_kinds_the_messenger_does_not_show_never_appear() -> None:
    """Only the kinds the customer's Messenger thread shows are kept."""
    hidden_kind = HistoryEntry(key=5, kind="internal_note", text="secret", created_at=AT)  # type: ignore[arg-type]
    history = recent_history([hidden_kind, entry(4, "mine")], total=2, limits=HistoryLimits())
    assert [4] == [e.key for e in history.entries]


@pytest.mark.parametrize("locale", sorted(HEADINGS))
@pytest.mark.parametrize("kind", ["teammate_reply", "state_changed"])
def test_history_follows_the_news_in_text_and_html(kind: str, locale: str) -> None:
    """Reply and state-change emails show the history below the news, marked with a heading, in both parts."""
    email = RENDERER.render(kind, locale, sample_context(kind, locale))
    for body in (email.text, email.html):
        heading = body.index(HEADINGS[locale])
        assert heading > body.index("T-1042")
        assert body.index("There was tape on it!") > heading
        assert body.index("LaserJet 4200") > body.index("There was tape on it!"), "newest first"
    assert "Since this morning" not in email.text.split(HEADINGS[locale])[1], "capped: the oldest are left out"
    assert "w2c-history" in email.html


def test_a_ticket_created_email_and_an_empty_history_show_no_heading() -> None:
    """The first email has no history; an email without history has no heading."""
    created = RENDERER.render("ticket_created", "en", sample_context("ticket_created", "en"))
    assert HEADINGS["en"] not in created.text
    context = sample_context("teammate_reply", "en")
    context["history"] = sample_context("teammate_reply", "en")["history"]
    context["history"].entries = []
    context["history"].hidden = 0
    email = RENDERER.render("teammate_reply", "en", context)
    assert HEADINGS["en"] not in email.text and HEADINGS["en"] not in email.html


def test_the_sample_history_is_long_and_capped() -> None:
    """The preview's sample thread is longer than the default caps, so previews show the hidden count."""
    history = sample_history()
    assert 5 == len(history.entries) and 3 == history.hidden
    assert "3 earlier messages are in the Messenger." in RENDERER.render(
        "teammate_reply", "en", sample_context("teammate_reply", "en")).text
