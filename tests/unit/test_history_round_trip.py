"""Round trip: a customer answers above an email with its history, as Gmail, Outlook and Apple Mail write
it, in several languages; the gateway's own parser and extractor land only the new words."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from html import escape

import pytest

from gateway.tokens import Keyring
from inbound.extract import REPLY_ABOVE_MARKERS, extract_reply
from inbound.pipeline import preview
from outbound.drafts import Drafter
from outbound.render import Branding, Renderer, find_templates
from outbound.samples import SAMPLE_REPLIES, sample_context, sample_history, sample_ticket

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
RENDERER = Renderer(find_templates(), branding=Branding(product_name="Acme"), markers=REPLY_ABOVE_MARKERS,
                    messenger_url="https://m.example/")
DRAFTER = Drafter(renderer=RENDERER, keyring=Keyring(((1, b"a-secret-of-sixteen-chars"),), "reply.example.test"),
                  from_address="Acme Support <support@acme.example>")
#: What the customer types, and how their mail client introduces the quote, per language.
WORDS = {
    "en": ("It prints again, thank you!\nThe faint pages are gone too.",
           "On Thu, Nov 26, 2026 at 12:00 PM Acme Support <support@acme.example> wrote:"),
    "de": ("Es druckt wieder, danke!\nAuch die blassen Seiten sind weg.",
           "Am Do., 26. Nov. 2026 um 12:00 Uhr schrieb Acme Support <support@acme.example>:"),
    "fr": ("Ça imprime de nouveau, merci !\nLes pages pâles ont disparu aussi.",
           "Le jeu. 26 nov. 2026 à 12:00, Acme Support <support@acme.example> a écrit :"),
    "ja": ("また印刷できるようになりました。ありがとうございます！",
           "2026年11月26日(木) 12:00 Acme Support <support@acme.example>:"),
    "ar": ("عادت الطابعة تعمل، شكرًا لكم!\nاختفت الصفحات الباهتة أيضًا.",
           "في الخميس، 26 نوفمبر 2026 في 12:00 م، كتب Acme Support <support@acme.example>:"),
}


def original(kind: str, locale: str) -> EmailMessage:
    """The email the gateway sent: real rendering, real composition, with the sample's long history."""
    ticket = sample_ticket(locale)
    context = sample_context(kind, locale)
    if kind == "teammate_reply":
        draft = DRAFTER.reply_email(ticket, list(SAMPLE_REPLIES), now=NOW, history=sample_history())
    else:
        draft = DRAFTER.draft(ticket, kind, now=NOW, extra={"change": context["change"]}, history=sample_history())
    message = message_from_bytes(draft.raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def parts(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    body = str(html.get_content())
    inner = re.search(r"<body[^>]*>(.*)</body>", body, re.DOTALL)
    assert inner is not None
    return str(text.get_content()), inner.group(1)


def quoted(text: str) -> str:
    return "\n".join(">" if not line else f"> {line}" for line in text.splitlines())


def gmail(new: str, said: str, text: str, html: str) -> tuple[str, str]:
    return (
        f"{new}\n\n{said}\n\n{quoted(text)}\n",
        f'<div dir="auto">{escape(new).replace(chr(10), "<br>")}</div><br><div class="gmail_quote">'
        f'<div dir="ltr" class="gmail_attr">{escape(said)}<br></div>'
        f'<blockquote class="gmail_quote" style="margin:0px 0px 0px 0.8ex;border-left:1px solid rgb(204,204,204);'
        f'padding-left:1ex">{html}</blockquote></div>',
    )


def outlook(new: str, said: str, text: str, html: str) -> tuple[str, str]:
    header = ("From: Acme Support <support@acme.example>\nSent: Thursday, November 26, 2026 12:00 PM\n"
              "To: Ada Lovelace <ada@example.com>\nSubject: [#T-1042] Printer prints blank pages")
    return (
        f"{new}\n\n________________________________\n{header}\n\n{text}\n",
        f'<div style="font-family:Calibri">{escape(new).replace(chr(10), "<br>")}</div>'
        f'<div id="appendonsend"></div><hr style="display:inline-block;width:98%" tabindex="-1">'
        f'<div id="divRplyFwdMsg" dir="ltr"><font face="Calibri" style="font-size:11pt">'
        f'{escape(header).replace(chr(10), "<br>")}</font><div>&nbsp;</div></div>{html}',
    )


def apple_mail(new: str, said: str, text: str, html: str) -> tuple[str, str]:
    return (
        f"{new}\n\n{said}\n\n{quoted(text)}\n",
        f"<div>{escape(new).replace(chr(10), '<br>')}</div><div><br><blockquote type=\"cite\">"
        f"<div>{escape(said)}</div><br>{html}</blockquote></div>",
    )


def reply(message: EmailMessage, shape: Callable[..., tuple[str, str]], new: str, said: str) -> bytes:
    text, html = parts(message)
    reply_text, reply_html = shape(new, said, text, html)
    answer = EmailMessage()
    answer["From"], answer["To"] = "Ada Lovelace <ada@example.com>", message["Reply-To"]
    answer["Subject"], answer["In-Reply-To"] = "Re: " + message["Subject"], message["Message-ID"]
    answer["Message-ID"] = "<answer-1@mail.example.com>"
    answer.set_content(reply_text)
    answer.add_alternative(f"<html><body>{reply_html}</body></html>", subtype="html")
    return answer.as_bytes()


@pytest.mark.parametrize("kind", ["teammate_reply", "state_changed"])
@pytest.mark.parametrize("locale", sorted(WORDS))
@pytest.mark.parametrize("shape", [gmail, outlook, apple_mail], ids=["gmail", "outlook", "apple_mail"])
def test_only_the_new_words_land(shape: Callable[..., tuple[str, str]], locale: str, kind: str) -> None:
    """Written above the history (text and HTML parts), only the customer's new words are extracted."""
    new, said = WORDS[locale]
    sent = original(kind, locale)
    assert "There was tape on it!" in parts(sent)[0], "the history is in the email answered"
    result = preview(reply(sent, shape, new, said), extract_reply)
    assert result["ok"], result
    assert new == result["reply"]["text"]
    assert result["reply"]["quoted"], "the history was recognised as quoted"


@pytest.mark.parametrize("locale", sorted(WORDS))
def test_text_only_replies_land_only_the_new_words_too(locale: str) -> None:
    """A plain-text client (no HTML part) quoting the text part lands only the new words as well."""
    new, said = WORDS[locale]
    text, _ = parts(original("teammate_reply", locale))
    assert new == extract_reply(f"{new}\n\n{said}\n\n{quoted(text)}\n").text
    assert new == extract_reply(f"{new}\n\n{text}\n").text, "even unquoted, below the marker is history"
