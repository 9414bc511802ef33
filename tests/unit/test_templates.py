"""Templates and composition: every kind in every locale, escaping, headers, threading."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage

import jinja2
import pytest

from gateway.models import Customer, TeammateReply
from gateway.tokens import Keyring
from outbound.drafts import Drafter, replies_context
from outbound.render import Branding, Renderer, find_templates
from outbound.samples import sample_context, sample_ticket

MARKER = "##- Please type your reply above this line -##"
BRAND = Branding(product_name="Acme Help", color="#aa3300", logo_url=None, footer_address="1 Main St, Springfield")
RENDERER = Renderer(find_templates(), branding=BRAND, markers={"en": MARKER}, messenger_url="https://acme.example/messenger")
KINDS = sorted(RENDERER.kinds)
LOCALES = sorted(RENDERER.locales)
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def drafter() -> Drafter:
    keyring = Keyring(((1, b"a-secret-of-sixteen-chars"),), "reply.example.test")
    return Drafter(renderer=RENDERER, keyring=keyring, from_address="Acme Support <support@acme.example>")


def parsed(raw: bytes) -> EmailMessage:
    message = message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def bodies(raw: bytes) -> tuple[str, str]:
    text, html = parsed(raw).iter_parts()
    return str(text.get_content()), str(html.get_content())  # type: ignore[attr-defined]


def test_every_kind_has_every_locale() -> None:
    """The shipped kinds are exactly the three notifications; the locales the ten the product promises."""
    assert ["state_changed", "teammate_reply", "ticket_created"] == KINDS
    assert ["ar", "de", "en", "es", "fr", "it", "ja", "nl", "pt_BR", "zh_Hans"] == LOCALES


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("kind", KINDS)
def test_template_renders_with_pill_link_marker_and_branding(kind: str, locale: str) -> None:
    """Each kind renders in each locale (StrictUndefined) with the pill, the Messenger link, marker and branding."""
    email = RENDERER.render(kind, locale, sample_context(kind, locale))
    assert "[#T-1042] Printer prints blank pages" == email.subject
    for body in (email.text, email.html):
        assert MARKER in body
        assert "T-1042" in body and "Printer prints blank pages" in body
        assert "https://acme.example/messenger" in body
        assert "1 Main St, Springfield" in body
    assert email.text.startswith(MARKER)
    direction = "rtl" if locale == "ar" else "ltr"
    assert f'<html lang="{locale.replace("_", "-")}" dir="{direction}">' in email.html
    assert locale == email.locale
    assert "Acme Help" in email.html and "#aa3300" in email.html
    assert "prefers-color-scheme: dark" in email.html
    assert "<script" not in email.html and "@import" not in email.html and "<link" not in email.html


def test_state_label_is_localised() -> None:
    """The ticket pill names the state in the customer's language."""
    german = RENDERER.render("state_changed", "de", sample_context("state_changed", "de"))
    english = RENDERER.render("state_changed", "en", sample_context("state_changed", "en"))
    arabic = RENDERER.render("state_changed", "ar", sample_context("state_changed", "ar"))
    assert "Gelöst" in german.html and "Resolved" not in german.html
    assert "Resolved" in english.html
    assert "تم الحل" in arabic.html and "Resolved" not in arabic.html


@pytest.mark.parametrize(
    ("wanted", "language"),
    [
        ("de-AT", "de"), ("de_CH", "de"), ("fr-CA", "fr"), ("pt-BR", "pt-BR"), ("pt_BR", "pt-BR"), ("pt-PT", "pt-BR"),
        ("zh-CN", "zh-Hans"), ("zh-Hans", "zh-Hans"), ("zh_Hans_SG", "zh-Hans"), ("zh", "zh-Hans"), ("zh-TW", "en"),
        ("ar-EG", "ar"), ("ja-JP", "ja"), ("sw", "en"), ("", "en"), ("not a locale", "en"),
    ],
)
def test_locale_negotiation(wanted: str, language: str) -> None:
    """A regional locale gets its language; Chinese goes by script; an unknown one gets the default."""
    email = RENDERER.render("ticket_created", wanted, sample_context("ticket_created", wanted))
    assert f'<html lang="{language}"' in email.html


def test_the_default_locale_is_configurable() -> None:
    """Customers with an unknown locale get the renderer's default locale (GATEWAY_DEFAULT_LOCALE)."""
    german = Renderer(find_templates(), branding=BRAND, markers={"en": MARKER}, messenger_url="https://m/",
                      default_locale="de")
    assert "de" == german.render("ticket_created", "sw", sample_context("ticket_created", "sw")).locale
    assert "fr" == german.render("ticket_created", "fr-BE", sample_context("ticket_created", "fr")).locale
    with pytest.raises(ValueError, match="'xx'"):
        Renderer(find_templates(), branding=BRAND, markers={"en": MARKER}, messenger_url="https://m/",
                 default_locale="xx")


def test_dates_are_in_the_customers_locale_and_time_zone() -> None:
    """Reply times are formatted by Babel in the customer's locale, in their time zone when known."""
    def reply_text(locale: str, time_zone: str | None) -> str:
        ticket = dataclasses.replace(sample_ticket(locale), customer=Customer(
            id="c", email="ada@example.com", name="Ada", locale=locale, time_zone=time_zone))
        reply = TeammateReply(id="r", author_name="Grace", text="Hi", html=None, created_at=NOW)
        text, _ = bodies(drafter().reply_email(ticket, [reply], now=NOW).raw)
        return text

    assert "Grace schrieb am 26.11.2026, 13:00:" in reply_text("de", "Europe/Berlin")
    assert "Grace wrote on Nov 26, 2026, 12:00" in reply_text("en", None)
    assert "2026/11/26 21:00" in reply_text("ja", "Asia/Tokyo")
    assert "Grace schrieb am 26.11.2026, 12:00:" in reply_text("de", "Not/AZone")


@pytest.mark.parametrize(("count", "words"), [
    (1, "There is 1 new reply"), (2, "There are 2 new replies"),
])
def test_a_burst_of_replies_reads_in_the_plural(count: int, words: str) -> None:
    """One reply and a burst read differently (ngettext), in English and in Arabic's six forms."""
    replies = [
        TeammateReply(id=f"r{n}", author_name="G", text=f"t{n}", html=None, created_at=NOW) for n in range(count)
    ]
    assert words in RENDERER.render("teammate_reply", "en", {**sample_context("teammate_reply", "en"),
                                                               "replies": replies_context(replies)}).text
    arabic = {1: "يوجد رد جديد", 2: "يوجد ردّان جديدان"}[count]
    assert arabic in RENDERER.render("teammate_reply", "ar", {**sample_context("teammate_reply", "ar"),
                                                                "replies": replies_context(replies)}).text


def test_a_missing_variable_is_an_error_not_an_empty_string() -> None:
    """StrictUndefined: a template variable the context lacks raises instead of rendering blank."""
    context = sample_context("state_changed", "en")
    del context["change"]
    with pytest.raises(jinja2.UndefinedError):
        RENDERER.render("state_changed", "en", context)


def test_hostile_title_and_reply_are_escaped_in_html() -> None:
    """A <script> in a title, a name or a reply's text is escaped; a reply's HTML is sanitised."""
    ticket = dataclasses.replace(
        sample_ticket("en"), title="<script>alert(1)</script>",
        customer=Customer(id="c", email="ada@example.com", name='<img src=x onerror="alert(2)">'),
    )
    replies = [
        TeammateReply(id="r1", author_name="<b>Eve</b>", text="<script>alert(3)</script>", html=None, created_at=NOW),
        TeammateReply(id="r2", author_name="Eve", text="x", created_at=NOW,
                      html='<p onclick="alert(4)">Hi<script>alert(5)</script><a href="javascript:alert(6)">x</a></p>'),
    ]
    draft = drafter().reply_email(ticket, replies, now=NOW)
    _, html = bodies(draft.raw)
    for payload in ("<script", "<img src=x", 'onerror="', "onclick", "javascript:", "<b>Eve</b>"):
        assert payload not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;script&gt;alert(3)&lt;/script&gt;" in html
    assert "<p>Hi" in html


def test_cr_lf_in_title_and_name_cannot_inject_headers() -> None:
    """CR/LF in a title or a customer's name stays inside one header value."""
    ticket = dataclasses.replace(
        sample_ticket("en"), title="Help\r\nBcc: victim@example.com",
        customer=Customer(id="c", email="ada@example.com", name="Ada\r\nX-Evil: 1"),
    )
    message = parsed(drafter().draft(ticket, "ticket_created", now=NOW).raw)
    assert message["Bcc"] is None and message["X-Evil"] is None
    assert "[#T-1042] Help Bcc: victim@example.com" == message["Subject"]
    assert '"Ada X-Evil: 1" <ada@example.com>' == str(message["To"])


def test_non_ascii_names_and_subjects_are_encoded_and_read_back() -> None:
    """Non-ASCII subjects and names go out as RFC 2047 words and decode back to the same text."""
    ticket = dataclasses.replace(
        sample_ticket("de"), title="Drucker druckt leere Seiten – schon wieder, seit Montag früh, sehr ärgerlich",
        customer=Customer(id="c", email="zoe@example.com", name='Zoë "Z" Ünal', locale="de"),
    )
    draft = drafter().draft(ticket, "ticket_created", now=NOW)
    assert draft.raw.isascii()
    assert all(len(line) <= 998 for line in draft.raw.split(b"\r\n"))
    message = parsed(draft.raw)
    assert f"[#T-1042] {ticket.title}" == message["Subject"]
    assert 'Zoë "Z" Ünal' == message["To"].addresses[0].display_name
    assert "Acme Support" == message["From"].addresses[0].display_name
    text, _ = bodies(draft.raw)
    assert "Hallo Zoë \"Z\" Ünal," in text
    assert [] == message.defects


def test_every_email_of_a_ticket_threads_under_the_first() -> None:
    """Later emails answer the first one (In-Reply-To, References), keep its subject, and carry unique ids."""
    make = drafter()
    first = make.draft(sample_ticket("en"), "ticket_created", now=NOW)
    ticket = dataclasses.replace(sample_ticket("en"), root_message_id=first.message_id)
    later = [
        make.draft(ticket, "state_changed", now=NOW, extra={"change": {"from": "submitted", "to": "in_progress"}}),
        make.reply_email(ticket, [TeammateReply(id="r", author_name="G", text="t", html=None, created_at=NOW)],
                         now=NOW),
    ]
    root = parsed(first.raw)
    assert root["In-Reply-To"] is None
    ids = {first.message_id}
    for draft in later:
        message = parsed(draft.raw)
        assert first.message_id == message["In-Reply-To"] == message["References"]
        assert root["Subject"] == message["Subject"]
        assert message["Reply-To"] == root["Reply-To"]
        ids.add(message["Message-ID"])
        assert ("auto-generated", "All") == (message["Auto-Submitted"], message["X-Auto-Response-Suppress"])
    assert 3 == len(ids)
