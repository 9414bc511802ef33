"""The result type, the gateway's own reply marker and the stable rule names."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

__all__ = [
    "REPLY_ABOVE_MARKER",
    "REPLY_ABOVE_MARKERS",
    "RULE_BLOCKQUOTE_CITE_HTML",
    "RULE_DATE_EMAIL_HEADER",
    "RULE_FORWARDED_BY",
    "RULE_FORWARDED_MESSAGE",
    "RULE_GATEWAY_MARKER",
    "RULE_GMAIL_QUOTE_HTML",
    "RULE_LOTUS_NOTES_HEADER",
    "RULE_MOZ_CITE_PREFIX_HTML",
    "RULE_NO_QUOTE",
    "RULE_ON_WROTE_HEADER",
    "RULE_ORIGINAL_MESSAGE_DELIMITER",
    "RULE_OUTLOOK_HEADER_BLOCK",
    "RULE_OUTLOOK_REPLY_HTML",
    "RULE_QUOTE_PREFIX",
    "RULE_UNQUOTED_FALLBACK",
    "RULE_YAHOO_QUOTED_HTML",
    "ExtractedReply",
]

#: The line the outbound templates put above the quoted ticket history; everything from
#: this line down is what we sent, so the reply is what the customer typed above it.
REPLY_ABOVE_MARKER = "##- Please type your reply above this line -##"

#: The same line in each language the emails are written in, by locale (the outbound renderer
#: puts the customer's language's line in each email; every one of them is recognised here,
#: whatever the language of the reply). Add a line here when a locale is added to the emails.
REPLY_ABOVE_MARKERS: Mapping[str, str] = MappingProxyType({
    "en": REPLY_ABOVE_MARKER,
    "de": "##- Bitte geben Sie Ihre Antwort über dieser Zeile ein -##",
    "fr": "##- Veuillez saisir votre réponse au-dessus de cette ligne -##",
    "es": "##- Escriba su respuesta por encima de esta línea -##",
    "it": "##- Scrivi la tua risposta sopra questa riga -##",
    "nl": "##- Typ uw antwoord boven deze regel -##",
    "pt_BR": "##- Digite sua resposta acima desta linha -##",
    "ja": "##- この行より上に返信を入力してください -##",
    "zh_Hans": "##- 请在此行上方输入您的回复 -##",
    "ar": "##- يُرجى كتابة ردك فوق هذا السطر -##",
})

#: Rule names reported in :attr:`ExtractedReply.rule` (stable: logged and counted).
RULE_GATEWAY_MARKER = "gateway_marker"
RULE_ON_WROTE_HEADER = "on_wrote_header"
RULE_DATE_EMAIL_HEADER = "date_email_header"
RULE_OUTLOOK_HEADER_BLOCK = "outlook_header_block"
RULE_LOTUS_NOTES_HEADER = "lotus_notes_header"
RULE_ORIGINAL_MESSAGE_DELIMITER = "original_message_delimiter"
RULE_FORWARDED_BY = "forwarded_by_delimiter"
RULE_FORWARDED_MESSAGE = "forwarded_message_kept"
RULE_QUOTE_PREFIX = "quote_prefix"
RULE_NO_QUOTE = "no_quote"
RULE_GMAIL_QUOTE_HTML = "gmail_quote_html"
RULE_BLOCKQUOTE_CITE_HTML = "blockquote_cite_html"
RULE_MOZ_CITE_PREFIX_HTML = "moz_cite_prefix_html"
RULE_OUTLOOK_REPLY_HTML = "outlook_reply_html"
RULE_YAHOO_QUOTED_HTML = "yahoo_quoted_html"
#: The rules left nothing, so the message's own unquoted text above its first history line
#: is the reply (see ``inbound.extract.lines.unquoted_text``).
RULE_UNQUOTED_FALLBACK = "unquoted_fallback"


@dataclass(frozen=True)
class ExtractedReply:
    """What the customer wrote, split from what they quoted.

    ``text`` is the new reply without surrounding blank lines.  ``signature`` is the
    sign-off / footer split off the end of the reply ("" if none); it keeps the blank
    line that separated it from ``text`` so ``text + "\\n" + signature`` restores the
    layout.  ``quoted`` is everything removed as history ("" if none).  ``rule`` names
    the rule that decided the cut.
    """

    text: str
    signature: str = ""
    quoted: str = ""
    rule: str = RULE_NO_QUOTE
