"""Replies whose own lines used to be cut with the history: none of their words may be lost.

Every case is written for this project, in the shapes mail clients produce: an attribution
wrapped over two or three lines right under the reply (no blank line between) where the
reply's last line itself opens like an attribution ("Le colis ...", "Am Montag ...", a date,
an address) in several languages and clients.
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
