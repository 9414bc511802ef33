"""Targeted behaviour of reply extraction: rules, signatures, HTML, safety limits."""

from __future__ import annotations

import time

import pytest

from inbound.extract import REPLY_ABOVE_MARKER, extract_reply

REPLY = "The parcel still has not arrived."
ATTRIBUTION = "On Mon, Mar 4, 2024 at 10:15 AM Support <support@example.com> wrote:"

#: Generous wall-clock bound for one pathological message (the typical one takes ~0.1 ms).
PATHOLOGICAL_SECONDS = 2.0


@pytest.mark.parametrize(
    ("body", "rule"),
    [
        (f"{REPLY}\n\n{ATTRIBUTION}\n> old\n", "on_wrote_header"),
        (f"{REPLY}\n\nFrom: A\nSent: today\nTo: B\nSubject: x\n\nold\n", "outlook_header_block"),
        (f"{REPLY}\n\n-----Original Message-----\nold\n", "original_message_delimiter"),
        (f"{REPLY}\n\n> old\n> older\n", "quote_prefix"),
        (f"{REPLY}\n\n{REPLY_ABOVE_MARKER}\nold\n", "gateway_marker"),
        (f"{REPLY}\n\nAnn Lee\n03/04/2024 10:15 AM\nTo: Bo Chan/ACME@ACME\ncc:\nSubject: x\n\nold\n",
         "lotus_notes_header"),
        (f"{REPLY}\n\n2024-03-04 10:15 GMT+01:00 Support <support@example.com>:\n\n> old\n",
         "date_email_header"),
        ("FYI\n\n---------- Forwarded message ---------\nFrom: A\n\nold\n", "forwarded_message_kept"),
        (f"{REPLY}\n", "no_quote"),
        (f"On Monday I bring it\nSupport <support@example.com> wrote on {ATTRIBUTION[3:19]}:\n\nold\n",
         "unquoted_fallback"),
    ],
)
def test_rule_names_the_deciding_rule(body: str, rule: str) -> None:
    """Each cut reports the stable name of the rule that made it."""
    assert rule == extract_reply(body).rule


def test_quoted_holds_what_was_removed() -> None:
    """The removed history is returned in `quoted`, header included."""
    result = extract_reply(f"{REPLY}\n\n{ATTRIBUTION}\n> old line\n")
    assert f"{ATTRIBUTION}\n> old line" == result.quoted


def test_signature_is_split_not_dropped() -> None:
    """A `-- ` signature moves to `signature` with the blank line that separated it."""
    result = extract_reply(f"{REPLY}\n\n-- \nKim Meyer\nACME\n")
    assert REPLY == result.text
    assert "\n-- \nKim Meyer\nACME" == result.signature


def test_text_and_signature_restore_the_reply() -> None:
    """`text + "\\n" + signature` gives back the reply as written."""
    body = f"Hi,\n\n{REPLY}\n\nBest regards,\nKim Meyer\n"
    result = extract_reply(body + f"\n{ATTRIBUTION}\n> old\n")
    assert body.strip() == result.text + "\n" + result.signature


def test_long_closing_paragraph_is_not_a_signature() -> None:
    """A closing word starting a long paragraph keeps the paragraph in the text."""
    body = (f"{REPLY}\n\nThanks for the update, but the tracking page still shows the old "
            "address and the driver called me twice about it.\n")
    assert body.strip() == extract_reply(body).text


def test_first_line_is_never_a_signature() -> None:
    """A one-line reply that looks like a sign-off stays the reply."""
    assert "Thanks!" == extract_reply(f"Thanks!\n\n{ATTRIBUTION}\n> old\n").text


def test_interleaved_keeps_every_answer() -> None:
    """Answers written between quoted lines are kept and the quoted lines dropped."""
    body = f"{ATTRIBUTION}\n> Size?\nM, please.\n\n> Colour?\n\nBlue.\n"
    result = extract_reply(body)
    assert "M, please.\n\nBlue." == result.text
    assert "> Size?" in result.quoted


def test_wrapped_quote_leftover_stays_quoted() -> None:
    """An unquoted tail of a long quoted line wrapped by a client stays in the quote."""
    body = (f"{REPLY}\n\n{ATTRIBUTION}\n> We have looked at your order and will get back to you "
            "as soon as\npossible, usually within two days.\n> Regards\n")
    assert REPLY == extract_reply(body).text


def test_forward_without_note_is_kept() -> None:
    """A forward with no note above it is the content and stays."""
    body = "---------- Forwarded message ---------\nFrom: Shop <s@example.net>\n\nShipped.\n"
    assert body.strip() == extract_reply(body).text


def test_header_block_at_top_is_content() -> None:
    """A header block with nothing above it (a pasted message) is not cut away."""
    body = "From: Shop\nSent: Monday\nTo: Me\nSubject: Order\n\nYour order shipped.\n"
    assert "Your order shipped." in extract_reply(body).text


def test_gateway_marker_wins_over_everything_below() -> None:
    """Only what is above the gateway marker can be the reply."""
    body = f"{REPLY}\n\n> {REPLY_ABOVE_MARKER}\n\nNew text that is really ours.\n"
    assert REPLY == extract_reply(body).text


def test_html_structure_is_used() -> None:
    """Gmail's quote container is cut from the HTML part."""
    html = ('<div>Yes please.</div><div class="gmail_quote"><div class="gmail_attr">'
            f"{ATTRIBUTION}</div><blockquote>old</blockquote></div>")
    result = extract_reply("Yes please.\n\n> old\n", html)
    assert "Yes please." == result.text
    assert "gmail_quote_html" == result.rule


def test_html_without_markers_defers_to_text() -> None:
    """HTML without quote markers leaves the decision to the plain-text rules."""
    result = extract_reply(f"{REPLY}\n\n> old\n", "<p>The parcel still has not arrived.</p><p>&gt; old</p>")
    assert REPLY == result.text
    assert "quote_prefix" == result.rule


def test_html_that_leaves_nothing_falls_back_to_text() -> None:
    """If the HTML cut leaves no reply, the plain text decides."""
    html = '<blockquote type="cite">Everything is quoted here.</blockquote>'
    assert REPLY == extract_reply(f"{REPLY}\n\n> old\n", html).text


def test_html_only_message_is_rendered() -> None:
    """With an empty text part, the HTML part is rendered to text and read."""
    html = "<p>First line<br>second line</p><p>Sent from my iPhone</p>"
    result = extract_reply("", html)
    assert "First line\nsecond line" == result.text
    assert "Sent from my iPhone" in result.signature


def test_broken_html_does_not_raise() -> None:
    """Malformed or empty HTML is tolerated."""
    assert REPLY == extract_reply(REPLY, "<div><<<>>").text
    assert REPLY == extract_reply(REPLY, "   ").text


@pytest.mark.parametrize(
    "body",
    [
        "> " * 1 + "\n".join(">" * (k % 40 + 1) + " quoted" for k in range(5000)),
        "x" * 1_000_000,
        ("On " + "Mon, " * 200_000 + "wrote:"),
        ("From: " + "a" * 500_000 + "\n") * 2,
        ":" * 1_000_000,
        ("-" * 5000 + "\n") * 200,
        ("On Mon, 4 Mar 2024\n" * 20_000) + "> x\n",
        ("a@b.c <x> wrote" + " " * 50 + "\n") * 20_000,
        ATTRIBUTION + "\n\n" + "Thanks,\n" * 120_000,
        (ATTRIBUTION + "\n\nThanks,\nBob\n\n") * 10_000,
        ATTRIBUTION + "\n\n" + "--\n" * 300_000,
    ],
    ids=["quote-ladder", "one-long-line", "long-on-header", "long-fields", "colons",
         "dash-rows", "many-starts", "many-wrote", "many-closings", "many-bottom-posts",
         "many-signature-dashes"],
)
def test_pathological_input_finishes_quickly(body: str) -> None:
    """Hostile shapes of about 1 MB finish well under the bound (no regex blow-up)."""
    start = time.perf_counter()
    for _ in range(1):
        extract_reply(body)
    assert time.perf_counter() - start < PATHOLOGICAL_SECONDS


@pytest.mark.parametrize(
    "html",
    [
        "<div>" * 5000 + "x" + "</div>" * 5000,
        '<blockquote type="cite">' * 3000 + "x",
        "<p>" + "a " * 500_000 + "</p>",
        '<div class="gmail_quote">' * 2000,
    ],
    ids=["deep-divs", "deep-cites", "huge-paragraph", "nested-gmail-quotes"],
)
def test_pathological_html_finishes_quickly(html: str) -> None:
    """Deeply nested or huge HTML parts finish well under the bound and do not raise."""
    start = time.perf_counter()
    for _ in range(1):
        extract_reply("", html)
    assert time.perf_counter() - start < PATHOLOGICAL_SECONDS


def test_route_lines_are_not_a_header_block() -> None:
    """Two field-like lines without any address or date stay customer text."""
    body = "Please change the booking.\nFrom: Berlin\nTo: Paris\n\nThe date stays the same.\n"
    assert body.strip() == extract_reply(body).text
