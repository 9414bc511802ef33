"""Replies whose own lines used to be cut with the history: none of their words may be lost.

Every case is written for this project, in the shapes mail clients produce:

* an attribution wrapped over two or three lines right under the reply (no blank line
  between) where the reply's last line itself opens like one ("Le colis ...", "Am Montag
  ...", a date, an address), in several languages and clients;
* a sign-off name, a one-word reply or a "cc: <name>" line right above an old Lotus Notes
  or Outlook header block;
* a message that starts with an attribution or "Original Message" block over the unquoted
  message, with the customer's text below it (bottom-posting without ``>`` markers);
* a signature whose last lines look like header fields ("A: <address>", "cc: <name>")
  above a header block;
* and the last resort: when the rules leave nothing, the message's own unquoted text is
  the reply (rule ``unquoted_fallback``); only what is really empty stays empty.
"""

from __future__ import annotations

import re
from collections import Counter

import pytest

from inbound.extract import extract_reply

ADDR = "support@example.com"
QUOTED = "> Hello,\n>\n> we will get back to you soon.\n>\n> The support team"
UNQUOTED = "Hello,\n\nwe will get back to you soon.\n\nThe support team"

#: Attributions as clients wrap them at about 76 characters (Gmail, Apple Mail without
#: format=flowed, Yahoo, Thunderbird), in several languages.
WRAPPED = {
    "gmail-en": f"On Tue, Mar 5, 2024 at 9:41 AM Support Team <{ADDR}>\nwrote:",
    "gmail-en-address-line": f"On Tue, Mar 5, 2024 at 9:41 AM Support Team\n<{ADDR}> wrote:",
    "gmail-en-3-lines": f"On Tue, Mar 5, 2024 at 9:41 AM Support Team of Example\nShop <{ADDR}>\nwrote:",
    "gmail-de": f"Am Di., 5. März 2024 um 09:41 Uhr schrieb Support Team <\n{ADDR}>:",
    "gmail-fr": f"Le mar. 5 mars 2024 à 09:41, Support Team <{ADDR}> a\nécrit :",
    "gmail-es": f"El mar, 5 mar 2024 a las 9:41, Support Team (<{ADDR}>)\nescribió:",
    "gmail-it": f"Il giorno mar 5 mar 2024 alle ore 09:41 Support Team <{ADDR}>\nha scritto:",
    "gmail-pt": f"Em ter., 5 de mar. de 2024 às 09:41, Support Team <{ADDR}>\nescreveu:",
    "gmail-nl": f"Op di 5 mrt 2024 om 09:41 schreef Support Team <{ADDR}\n>:",
    "gmail-sv": f"Den tis 5 mars 2024 kl 09:41 skrev Support Team <\n{ADDR}>:",
    "gmail-ru": f"вт, 5 мар. 2024 г. в 09:41, Support Team <\n{ADDR}>:",
    "gmail-ja": f"2024年3月5日(火) 9:41 Support Team <\n{ADDR}>:",
    "apple-en": f"On Mar 5, 2024, at 09:41, Support Team <{ADDR}>\nwrote:",
    "apple-de": f"Am 05.03.2024 um 09:41 schrieb Support Team\n<{ADDR}>:",
    "yahoo-en": f"On Tuesday, March 5, 2024, 09:41:22 AM GMT+1, Support Team <\n{ADDR}> wrote:",
    "yahoo-fr": f"Le mardi 5 mars 2024, 09:41:22 UTC+1, Support Team <{ADDR}> a\nécrit :",
    "thunderbird-en": "On 3/5/24 9:41 AM, Support Team of Example Shop and\nLogistics wrote:",
}

#: The reply's last line, right above the attribution: many open like one.
LAST_LINES = {
    "en-plain": "Could you check the tracking number again?",
    "en-on": "On Monday the parcel came, but it was damaged.",
    "en-digit": "2 of the 3 parcels arrived on 4 March.",
    "en-address": "Please write to billing@example.org from now on.",
    "en-angle": "The label says <fragile> twice.",
    "de": "Am Montag kam nur ein Paket an.",
    "fr": "Le colis est arrivé, mais abîmé.",
    "fr-no-stop": "Le colis est arrivé mais abîmé",
    "es": "El paquete llegó ayer por la tarde.",
    "it": "Il pacco è arrivato ieri.",
    "pt": "Em anexo segue a nota fiscal.",
    "nl": "Op maandag kwam het pakket.",
    "sv": "Den 4 mars kom paketet.",
    "ru": "В понедельник пришла только одна посылка.",
    "ja": "2024年3月4日に荷物が届きました。",
}


def _words(text: str) -> Counter[str]:
    return Counter(re.findall(r"\w+", text))


def _assert_reply(body: str, reply: str) -> None:
    result = extract_reply(body)
    assert reply == result.text
    assert _words(body) == _words("\n".join((result.text, result.signature, result.quoted)))


@pytest.mark.parametrize("last", list(LAST_LINES.values()), ids=list(LAST_LINES))
@pytest.mark.parametrize("header", list(WRAPPED.values()), ids=list(WRAPPED))
def test_wrapped_attribution_right_under_the_reply(header: str, last: str) -> None:
    """A wrapped attribution directly under the reply cuts the history, not the reply's last line."""
    reply = f"Hello,\n\n{last}"
    _assert_reply(f"{reply}\n{header}\n{QUOTED}\n", reply)


@pytest.mark.parametrize("last", list(LAST_LINES.values()), ids=list(LAST_LINES))
def test_wrapped_attribution_over_unquoted_history(last: str) -> None:
    """Over unquoted history (Gmail's plain replies) the reply's last line stays too."""
    reply = f"Hello,\n\n{last}"
    _assert_reply(f"{reply}\n{WRAPPED['gmail-en']}\n\n{UNQUOTED}\n", reply)


@pytest.mark.parametrize("last", list(LAST_LINES.values()), ids=list(LAST_LINES))
def test_one_line_attribution_right_under_the_reply(last: str) -> None:
    """An unwrapped attribution directly under a line that opens like one cuts only itself."""
    reply = f"Hello,\n\n{last}"
    header = f"Le mar. 5 mars 2024 à 09:41, Support Team <{ADDR}> a écrit :"
    _assert_reply(f"{reply}\n{header}\n{QUOTED}\n", reply)


#: Old Lotus Notes and Outlook header blocks (plain text), several languages.
BLOCKS = {
    "lotus-named": "Jane Doe on 03/04/2001 10:15:32 AM\nTo: Mark Smith/HOU/ECT@ECT\ncc: \nSubject: Re: Order 1234",
    "lotus-named-org": ("Jane Doe/ACME@ACME on 03/04/2001 10:15 AM\nTo: Mark Smith/ACME@ACME\n"
                        "cc: Bob Jones/ACME@ACME\nSubject: Re: Order 1234"),
    "lotus-named-address": (f'"Jane Doe" <{ADDR}> on 03/04/2001 10:15:32 AM\nTo: <mark@example.org>\ncc: \n'
                            "Subject: Re: Order 1234"),
    "lotus-indented": ("\tJane Doe on 03/04/2001 10:15 AM\n\t\tTo: Mark Smith/ACME@ACME\n\t\tcc: \n"
                       "\t\tSubject: Re: Order 1234"),
    "lotus-bare-en": "Jane Doe\n03/04/2001 10:15 AM\nTo: Mark Smith/ACME@ACME\ncc: \nSubject: Re: Order 1234",
    "lotus-bare-de": ("Jane Doe/ACME@ACME\n04.03.2024 10:15\n\nAn: Mark Smith/ACME@ACME\nKopie: \n"
                      "Thema: Re: Bestellung 1234"),
    "outlook-en": (f"From: Jane Doe [mailto:{ADDR}]\nSent: Monday, March 04, 2024 10:15 AM\nTo: Mark Smith\n"
                   "Cc: Bob Jones\nSubject: RE: Order 1234"),
    "outlook-de": (f"Von: Jane Doe [mailto:{ADDR}]\nGesendet: Montag, 4. März 2024 10:15\nAn: Mark Smith\n"
                   "Cc: Bob Jones\nBetreff: AW: Bestellung 1234"),
    "outlook-fr": (f"De : Jane Doe [mailto:{ADDR}]\nEnvoyé : lundi 4 mars 2024 10:15\nÀ : Mark Smith\n"
                   "Cc : Bob Jones\nObjet : RE: Commande 1234"),
    "outlook-es": (f"De: Jane Doe [mailto:{ADDR}]\nEnviado el: lunes, 4 de marzo de 2024 10:15\n"
                   "Para: Mark Smith\nCC: Bob Jones\nAsunto: RE: Pedido 1234"),
    "outlook-it": (f"Da: Jane Doe [mailto:{ADDR}]\nInviato: lunedì 4 marzo 2024 10:15\nA: Mark Smith\n"
                   "Cc: Bob Jones\nOggetto: R: Ordine 1234"),
    "outlook-nl": (f"Van: Jane Doe [mailto:{ADDR}]\nVerzonden: maandag 4 maart 2024 10:15\nAan: Mark Smith\n"
                   "CC: Bob Jones\nOnderwerp: RE: Bestelling 1234"),
    "gmx-de": (f'Gesendet: Montag, 04. März 2024 um 10:15 Uhr\nVon: "Jane Doe" <{ADDR}>\n'
               "An: mark@example.org\nBetreff: Bestellung 1234"),
}

#: What the customer wrote, ending right above the block: a sign-off name, a one-word
#: reply, a cc note.
ABOVE_BLOCK = {
    "signoff-name": "Please handle this today.\nMark",
    "closing-and-name": "Please handle this today.\n\nThanks,\nMark",
    "de-closing-and-name": "Ich kümmere mich darum.\n\nGruß\nMark",
    "yes": "Yes",
    "ok": "OK",
    "ja": "Ja",
    "oui": "Oui",
    "agreed": "Agreed.",
    "cc-line": "Please handle this today.\ncc: Bob Jones",
    "cc-line-upper": "Bitte heute erledigen.\nCC: Anna Müller",
}

#: Signatures whose last lines look like header fields (To-like "A:" address lines, cc notes).
FIELD_SIGNATURES = {
    "nl-compact": ("Het pakket is niet aangekomen.",
                   "Met vriendelijke groet,\nJan de Vries\nT: 020 123 4567\nE: jan@bedrijf.nl\n"
                   "A: Herengracht 1, Amsterdam"),
    "en-compact": ("The parcel has not arrived.",
                   "Best,\nKim Meyer\nM: +44 7700 900123\nE: kim@example.org\nA: 1 High Street, London"),
    "it-address": ("Il pacco non è arrivato.",
                   "Cordiali saluti,\nMarco Rossi\nTel: 02 1234567\nA: Via Roma 1, Milano"),
    "en-cc-note": ("The parcel has not arrived.", "Thanks,\nKim\ncc: Bob Jones (accounts)"),
    "de-kopie": ("Das Paket ist nicht angekommen.", "Viele Grüße\nAnna Schmidt\nKopie: Buchhaltung"),
}


def _assert_all_words_kept(body: str, own: str) -> None:
    result = extract_reply(body)
    assert _words(own) == _words(f"{result.text}\n{result.signature}")
    assert "Old text" in result.quoted
    assert _words(body) == _words("\n".join((result.text, result.signature, result.quoted)))


@pytest.mark.parametrize("above", list(ABOVE_BLOCK.values()), ids=list(ABOVE_BLOCK))
@pytest.mark.parametrize("block", list(BLOCKS.values()), ids=list(BLOCKS))
def test_line_right_above_an_old_header_block_stays(block: str, above: str) -> None:
    """A sign-off name, one-word reply or cc line right above a Lotus/Outlook block is not cut with it."""
    _assert_all_words_kept(f"{above}\n{block}\n\nOld text of the message.\n", above)


@pytest.mark.parametrize("gap", ["\n", "\n\n"], ids=["tight", "blank"])
@pytest.mark.parametrize("block", list(BLOCKS.values()), ids=list(BLOCKS))
@pytest.mark.parametrize("case", list(FIELD_SIGNATURES.values()), ids=list(FIELD_SIGNATURES))
def test_signature_with_field_like_lines_stays_whole(case: tuple[str, str], block: str, gap: str) -> None:
    """A signature ending in field-like lines ("A: <address>", "cc: <name>") is not partly cut."""
    reply, signature = case
    own = f"{reply}\n\n{signature}"
    _assert_all_words_kept(f"{own}{gap}{block}\n\nOld text of the message.\n", own)


#: What heads a bottom-posted reply: an attribution or an "Original Message" block, per client.
HEADS = {
    "gmail-en": f"On Tue, Mar 5, 2024 at 9:41 AM Support <{ADDR}> wrote:",
    "gmail-de": f"Am Di., 5. März 2024 um 09:41 Uhr schrieb Support <{ADDR}>:",
    "gmail-fr": f"Le mar. 5 mars 2024 à 09:41, Support <{ADDR}> a écrit :",
    "gmail-es": f"El mar, 5 mar 2024 a las 9:41, Support (<{ADDR}>) escribió:",
    "gmail-it": f"Il giorno mar 5 mar 2024 alle ore 09:41 Support <{ADDR}> ha scritto:",
    "gmail-pt": f"Em ter., 5 de mar. de 2024 às 09:41, Support <{ADDR}> escreveu:",
    "gmail-nl": f"Op di 5 mrt 2024 om 09:41 schreef Support <{ADDR}>:",
    "gmail-ru": f"вт, 5 мар. 2024 г. в 09:41, Support <{ADDR}>:",
    "gmail-ja": f"2024年3月5日(火) 9:41 Support <{ADDR}>:",
    "apple-en": f"On Mar 5, 2024, at 09:41, Support <{ADDR}> wrote:",
    "thunderbird-de": "Am 05.03.24 um 09:41 schrieb Support:",
    "yahoo-en": f"On Tuesday, March 5, 2024, 09:41:22 AM GMT+1, Support <{ADDR}> wrote:",
    "outlook-en": (f"-----Original Message-----\nFrom: Support [mailto:{ADDR}]\n"
                   "Sent: Tuesday, March 05, 2024 9:41 AM\nTo: Kim Meyer\nSubject: RE: Order 1234"),
    "android-de": (f"-------- Ursprüngliche Nachricht --------\nVon: Support <{ADDR}>\n"
                   "Datum: 05.03.24 09:41 (GMT+01:00)\nAn: kim@example.org\nBetreff: Bestellung 1234"),
}

#: The unquoted message under the head, ending as agents' and customers' mail ends, and the
#: customer's answer written below it.
BOTTOM_POSTED = {
    "en-signoff": ("Hello Kim,\n\nyour order has shipped today.\n\nKind regards,\nSupport Team\nExample Shop",
                   "The parcel has not arrived yet.\nCould you check the tracking number?"),
    "de-signoff": ("Hallo Kim,\n\nIhre Bestellung wurde heute versandt.\n\nMit freundlichen Grüßen\n"
                   "Ihr Support-Team", "Das Paket ist noch nicht da.\nKönnen Sie nachsehen?"),
    "fr-signoff": ("Bonjour Kim,\n\nvotre commande a été expédiée.\n\nCordialement,\nLe service client",
                   "Le colis n'est pas encore arrivé.\nPouvez-vous vérifier ?"),
    "es-signoff": ("Hola Kim,\n\nsu pedido ha sido enviado.\n\nSaludos,\nEl equipo de soporte",
                   "El paquete todavía no ha llegado.\n¿Pueden revisarlo?"),
    "it-signoff": ("Ciao Kim,\n\nil tuo ordine è stato spedito.\n\nCordiali saluti,\nAssistenza clienti",
                   "Il pacco non è ancora arrivato.\nPotete controllare?"),
    "pt-signoff": ("Olá Kim,\n\nseu pedido foi enviado.\n\nAtenciosamente,\nEquipe de suporte",
                   "O pacote ainda não chegou.\nPodem verificar?"),
    "nl-signoff": ("Hallo Kim,\n\nuw bestelling is verzonden.\n\nMet vriendelijke groet,\nKlantenservice",
                   "Het pakket is nog niet aangekomen.\nKunt u het nakijken?"),
    "ru-signoff": ("Здравствуйте, Ким!\n\nВаш заказ отправлен.\n\nС уважением,\nСлужба поддержки",
                   "Посылка ещё не пришла.\nПроверьте, пожалуйста."),
    "dash-signature": ("Hello Kim,\n\nyour order has shipped today.\n\n-- \nExample Shop support\n"
                       "https://shop.example.com", "The parcel has not arrived yet."),
    "iphone-footer": ("Your order has shipped today.\n\nSent from my iPhone", "It has not arrived yet."),
    "iphone-footer-de": ("Ihre Bestellung ist unterwegs.\n\nVon meinem iPhone gesendet",
                         "Sie ist noch nicht angekommen."),
    "indented-spaces": ("    Hello Kim,\n\n    your order has shipped today.\n\n    Kind regards,\n    Support",
                        "The parcel has not arrived yet."),
    "indented-tab": ("\tHallo Kim,\n\tIhre Bestellung wurde versandt.\n\n\tGruß\n\tSupport",
                     "Das Paket ist noch nicht da."),
}


@pytest.mark.parametrize("case", list(BOTTOM_POSTED.values()), ids=list(BOTTOM_POSTED))
@pytest.mark.parametrize("head", list(HEADS.values()), ids=list(HEADS))
def test_text_below_an_unquoted_message_heading_the_reply(head: str, case: tuple[str, str]) -> None:
    """Bottom-posted under an unquoted message: the text below its sign-off (or indent) is the reply."""
    old, reply = case
    _assert_reply(f"{head}\n\n{old}\n\n{reply}\n", reply)


@pytest.mark.parametrize("head", list(HEADS.values()), ids=list(HEADS))
def test_bottom_posted_below_older_quoted_history(head: str) -> None:
    """Below the unquoted message, older ">" history is cut and the customer's text under it kept."""
    old, reply = BOTTOM_POSTED["en-signoff"]
    older = "On Mon, Mar 4, 2024 at 8:00 AM Kim <kim@example.org> wrote:\n> Where is my order?"
    _assert_reply(f"{head}\n\n{old}\n\n{older}\n\n{reply}\n", reply)


@pytest.mark.parametrize(
    "old",
    ["Hello Kim,\n\nyour order has shipped today.",
     "Hello Kim,\n\nyour order has shipped today.\n\nKind regards,\nSupport Team"],
    ids=["no-signoff", "signoff-at-end"],
)
@pytest.mark.parametrize("head", list(HEADS.values()), ids=list(HEADS))
def test_unquoted_message_alone_stays_history(head: str, old: str) -> None:
    """With nothing below the unquoted message, all of it is history (no reply text is made up)."""
    assert "" == extract_reply(f"{head}\n\n{old}\n").text


#: Replies the rules still cut whole (a line that opens like an attribution, with no full
#: stop, joined to a verb-first attribution under it; a word above a bare Lotus date line),
#: and the unquoted text the fallback keeps.
FALLBACK = {
    "sv-yahoo": ("På måndag tar jag med skrivaren\nAnna Svensson <anna@example.se> skrev den 4 mars 2024 "
                 "kl. 10:15:\n\nHej,\nskrivaren är lagad.\n", "På måndag tar jag med skrivaren"),
    "de-yahoo": ("Am Montag bringe ich den Drucker vorbei\nAnna Schmidt <anna@example.de> schrieb am "
                 "Mo., 4. März 2024 um 10:15:\n\nHallo,\nder Drucker ist repariert.\n",
                 "Am Montag bringe ich den Drucker vorbei"),
    "lotus-bare-date": ("Yes\n03/04/2001 10:15 AM\nTo: Mark Smith/ACME@ACME\ncc: \nSubject: Re: Order\n\nOld.\n",
                        "Yes\n03/04/2001 10:15 AM"),
}


@pytest.mark.parametrize("case", list(FALLBACK.values()), ids=list(FALLBACK))
def test_unquoted_text_is_the_reply_when_the_rules_leave_nothing(case: tuple[str, str]) -> None:
    """When the rules leave nothing, the unquoted text above the first history line is the reply."""
    body, own = case
    result = extract_reply(body)
    assert (own, "unquoted_fallback") == (result.text, result.rule)
    assert _words(body) == _words("\n".join((result.text, result.signature, result.quoted)))


def test_html_only_reply_falls_back_to_its_rendered_text() -> None:
    """With only an HTML part, the fallback reads the rendered HTML."""
    html = ("<div>På måndag tar jag med skrivaren<br>Anna Svensson &lt;anna@example.se&gt; skrev den "
            "4 mars 2024 kl. 10:15:</div><div>Hej,<br>skrivaren är lagad.</div>")
    result = extract_reply("", html)
    assert ("På måndag tar jag med skrivaren", "unquoted_fallback") == (result.text, result.rule)


@pytest.mark.parametrize(
    "body",
    [
        "",
        "\n \n",
        "> Hello,\n> is it fixed?\n",
        f"On Tue, Mar 5, 2024 at 9:41 AM Support <{ADDR}> wrote:\n\n> Hello,\n> is it fixed?\n",
        f"On Tue, Mar 5, 2024 at 9:41 AM Support <{ADDR}> wrote:\n\nHello,\nis it fixed?\n",
        "##- Please type your reply above this line -##\n\nHello,\nis it fixed?\n",
        "---------------------- Forwarded by Jane Doe/ACME on 03/04/2001 10:15 AM ---------------------------\n\n"
        "Old text.\n",
    ],
    ids=["empty", "blank", "quote-only", "attribution-and-quote", "attribution-and-unquoted",
         "gateway-marker-first", "lotus-forward"],
)
def test_really_empty_reply_stays_empty(body: str) -> None:
    """A message with nothing but history (or nothing at all) gives no text and no fallback."""
    result = extract_reply(body)
    assert ("", False) == (result.text, result.rule == "unquoted_fallback")
