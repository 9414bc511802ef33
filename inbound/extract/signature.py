"""Split the sign-off, signature and client footer off the end of a reply.

Nothing is dropped here: what looks like a signature moves to ``signature``.  The first
line (top-down) that opens a signature-shaped tail wins:

* ``-- `` on its own line (RFC 3676), anything after it;
* a row of underscores / dashes / stars with a short footer under it (mailing lists,
  disclaimers);
* a mobile / client footer ("Sent from my iPhone", "Von meinem iPhone gesendet", "Get
  Outlook for iOS") with at most a few lines after it;
* a closing line ("Thanks,", "Best regards", "Mvh", "Pozdrawiam") or a "-Name" line,
  followed by at most a few short lines (name, title, phone);
* a last short block of one to three title-case lines (a name, a company).
"""

from __future__ import annotations

import re
from itertools import compress, count, repeat
from typing import Final

from inbound.extract.headers import BLANK_CHARS, is_blank, is_delimiter_row

__all__ = ["CLOSINGS", "MOBILE_FOOTERS", "is_client_footer", "is_closing", "split_signature"]

#: Closing words and phrases that open a sign-off, per language (matched case-insensitively).
CLOSINGS: Final = (
    # en
    "thanks", "thank you", "thanks again", "many thanks", "thanks in advance", "thx", "ty",
    "cheers", "regards", "best regards", "kind regards", "warm regards", "warmest regards",
    "best wishes", "all the best", "best", "sincerely", "yours sincerely", "yours truly",
    "yours", "respectfully", "rgds", "br", "brgds", "take care", "talk soon", "later",
    "hope this helps", "hope that helps", "hth", "with thanks", "with regards", "love",
    "greetings", "ciao", "thanks and regards", "thanks & regards", "appreciate it",
    # de
    "mit freundlichen grüßen", "mit freundlichen grüssen", "freundliche grüße", "viele grüße",
    "viele grüsse", "beste grüße", "liebe grüße", "grüße", "grüsse", "gruß", "gruss", "lg",
    "vg", "mfg", "danke", "vielen dank", "besten dank",
    # fr
    "cordialement", "bien cordialement", "bien à vous", "salutations", "merci",
    "merci beaucoup", "bonne journée", "amicalement", "bises",
    # es / pt / it
    "saludos", "un saludo", "atentamente", "gracias", "muchas gracias", "abrazos",
    "atenciosamente", "obrigado", "obrigada", "abraços", "cumprimentos",
    "cordiali saluti", "distinti saluti", "saluti", "grazie", "grazie mille", "a presto",
    # nl / nordic / fi
    "met vriendelijke groet", "met vriendelijke groeten", "vriendelijke groet", "groeten",
    "groetjes", "bedankt", "dank je", "mvh", "med vänlig hälsning", "vänliga hälsningar",
    "hälsningar", "med venlig hilsen", "venlig hilsen", "vennlig hilsen", "hilsen", "kh",
    "vh", "tack", "tak", "takk", "ystävällisin terveisin", "terveisin", "kiitos",
    "dbh", "bedste hilsner", "de bedste hilsner", "knus", "på forhånd tak", "bästa hälsningar",
    "med vänliga hälsningar", "hartelijke groeten", "dank u", "bonne réception",
    # pl / cs / ru / uk / tr / el
    "z powazaniem", "s úctou", "děkujeme",
    "pozdrawiam", "z poważaniem", "dziękuję", "pozdrowienia", "s pozdravem", "děkuji",
    "s pozdravom", "с уважением", "спасибо", "с наилучшими пожеланиями", "всего доброго",
    "з повагою", "дякую", "saygılarımla", "teşekkürler", "iyi çalışmalar",
    "με εκτίμηση", "ευχαριστώ",
    # ja / zh / ko
    "よろしくお願いします", "よろしくお願いいたします", "以上、よろしくお願いいたします", "敬具",
    "此致", "谢谢", "謝謝", "祝好", "감사합니다", "고맙습니다",
)

#: Mobile and mail-client footers (whole line, matched case-insensitively); ``{D}`` stands
#: for the device or app name.  iOS, Android, Outlook, Yahoo, AOL and other apps, in the
#: languages those apps ship.
MOBILE_FOOTERS: Final = (
    # en
    r"sent from my{D}",
    r"sent from (?:yahoo mail|mail|outlook|samsung|aol|gmail|proton ?mail|acompli|"
    r"bluemail|spark|edison|mymail|windows|huawei|xiaomi|the [\w ]{1,20} app)[\w .'&+-]{0,40}",
    r"sent (?:with|via|using) [\w .'&+()/:?=-]{1,80}",
    r"get (?:bluemail|spark|yahoo mail|the [\w ]{1,20} app)[\w .:/<>?=-]{0,60}",
    # de / fr / es / pt / it / ca
    r"von meinem {D} gesendet",
    r"(?:gesendet|versendet) (?:von|mit|vom) (?:meinem )?{D}",
    r"envoyé (?:de|depuis) (?:mon|ma|l'application)? ?{D}",
    r"enviado (?:desde|de|do|a partir do|a partir de) (?:mi|meu|o meu|my)? ?{D}",
    r"inviato da(?:l mio| il mio| mio)?{D}",
    r"enviat (?:des de|de|amb){D}",
    # nl / sv / da / no / fi / is
    r"(?:verzonden|verstuurd) (?:vanaf|met|via|van) (?:mijn )?{D}",
    r"skickat från (?:min )?{D}",
    r"sendt fra (?:min )?{D}",
    r"lähetetty{D}",
    r"sent úr{D}",
    # pl / cs / sk / hu / ro / hr / sl / sr
    r"wysłane z (?:mojego )?{D}",
    r"wysłano z (?:mojego )?{D}",
    r"odesláno z{D}",
    r"odoslané z{D}",
    r"trimis (?:de pe|de|din|cu){D}",
    r"poslano (?:s|sa|z|iz|iz mog|s mog|z mojega){D}",
    r"poslato (?:sa|iz){D}",
    # ru / uk / bg / el / tr
    r"отправлено (?:с|из){D}",
    r"надіслано з{D}",
    r"изпратено от{D}",
    r"στάλθηκε από{D}",
    # id / ms / vi / th / he / ar
    r"dikirim dari{D}",
    r"dihantar dari{D}",
    r"được gửi từ{D}",
    r"ส่งจาก{D}",
    r"נשלח מ(?:ה-)?{D}",
    r"(?:أُرسلت|أرسلت|مرسل) من{D}",
    # ja / zh / ko
    r"(?:发自我的|發自我的) ?{D}",
    r"(?:从我的|從我的) ?{D} ?(?:发送|傳送|發送)",
    r"내 {D}에서 보냄",
)
#: First words of the footers above (a cheap test before the expression).
_MOBILE_FIRST_WORDS: Final = frozenset(
    "sent get von gesendet versendet envoyé enviado inviato enviat verzonden verstuurd skickat"
    " sendt lähetetty wysłane wysłano odesláno odoslané trimis poslano poslato отправлено"
    " надіслано изпратено στάλθηκε dikirim dihantar được ส่งจาก נשלח أُرسلت أرسلت مرسل 내".split()
)
_MOBILE_OPENINGS: Final = ("发自我的", "發自我的", "从我的", "從我的")

#: Footers that name the device first ("iPhone-ról küldve", "iPhone'umdan gönderildi",
#: "iPhoneから送信"): matched by their ending, with a device word before it.
MOBILE_FOOTER_ENDINGS: Final = ("küldve", "gönderildi", "から送信")

#: The device or app part of a footer, and a note some users add ("please excuse typos").
_DEVICE: Final = r"[^\n,;:!?()<>\[\]]{1,40}?"
_FOOTER_NOTE: Final = r"(?:[ \t]*[,.;:!–—-][ \t]*[\w ,.'’!-]{0,60})?"

_DASHES: Final = frozenset({"--", "—", "–", "-- --"})
_COMPANY_ABBREVIATIONS: Final = frozenset(
    "Corp. Inc. Ltd. Co. LLC. L.L.C. S.A. S.L. N.V. B.V. A.G. Bros. Jr. Sr.".split()
)
_NAME_PARTICLES: Final = frozenset("of and & de da van von der den la le y e di du".split())
#: Every client footer names a device or an app, or says "my" (which device is then
#: free): "Lähetetty eilen" or "Paket dün gönderildi" are sentences, not footers.
_DEVICE_WORDS: Final = (
    r"i(?:phon|pad|pod)|android|galaxy|samsung|huawei|xiaomi|honor|oneplus|pixel|nokia"
    r"|blackberry|xperia|motorola|oppo|smartphone|phone|telefon|mobil|handy|tablet|outlook"
    r"|yahoo|aol|gmail|mail|proton|spark|bluemail|edison|windows|device|appareil|dispositivo"
    r"|apparaat|enhet|laite|urządzen|zařízení|устройств|телефон|планшет"
)
_DEVICE_RE: Final = re.compile(_DEVICE_WORDS, re.IGNORECASE)
_DEVICE_HINT_RE: Final = re.compile(
    _DEVICE_WORDS + r"|\b(?:my|meinem|mon|ma|mi|meu|mio|mijn|min|mojego|mog|mou|saya|tôi)\b"
    r"|μου|我的|내 |ฉัน|שלי",
    re.IGNORECASE,
)
_NOTE_START_RE: Final = re.compile(r"[,;:!–—]|[.-][ \t]")
#: Outlook app footers ("Get Outlook for iOS", "Outlook für Android herunterladen",
#: "iOS 版 Outlook を入手"): "Outlook", a platform, and a word to get it, in any order.
_OUTLOOK_APP_RE: Final = re.compile(r"\boutlook\b", re.IGNORECASE)
_PLATFORM_RE: Final = re.compile(r"(?<![a-z])(?:ios|android)(?![a-z])", re.IGNORECASE)
_GET_RE: Final = re.compile(
    r"\bget\b|hent|holen|beziehen|herunterladen|obtenir|obten|obter|baixe|scarica|download"
    r"|hämta|\bfå\b|hanki|pobierz|stáhn|stiahn|загруз|получ|скача|завантаж|edin|indir|入手"
    r"|获取|獲取|받기|dapatkan|unduh|tải|λήψη|töltse|descarc|preuzm|prenes|aka\.ms",
    re.IGNORECASE,
)
_RULE_START: Final = frozenset("-_=*~—–")
_CLOSING_FIRST_WORDS: Final = frozenset(c.split()[0].strip(",.!") for c in CLOSINGS)
_MOBILE_RE: Final = re.compile(
    r"[ \t>]*(?:" + "|".join(f.replace("{D}", _DEVICE) for f in MOBILE_FOOTERS) + r")"
    + _FOOTER_NOTE + r"[ \t]*$",
    re.IGNORECASE,
)
_CLOSING_RE: Final = re.compile(
    r"[ \t]*(?:"
    + "|".join(re.escape(c) for c in sorted(CLOSINGS, key=len, reverse=True))
    + r")(?![\w])[ \t,.!:;~-]*(?:[\w.'-]+[ \t,.!]*){0,3}$",
    re.IGNORECASE,
)
_DASH_NAME_RE: Final = re.compile(r"[ \t]*(?:-{1,2}|/|~|–|—)[ \t]?[A-Z][\w.'-]*(?:[ \t][\w.'-]+){0,2}[ \t]*$")
_TITLE_LINE_RE: Final = re.compile(r"[ \t]*[A-Z][\w&.'-]*(?:[ \t]+[\w&.'(),/-]+){0,5}[ \t]*$")

#: Longest line (characters) that may sit under a sign-off (name, title, phone).
MAX_SIGNOFF_LINE: Final = 72
#: Most non-blank lines under a closing line / "-Name" line.
MAX_SIGNOFF_TAIL: Final = 6
#: Most non-blank lines under a mobile footer.
MAX_FOOTER_TAIL: Final = 3
#: Most non-blank lines under a separator row (mailing-list footers, disclaimers).
MAX_ROW_TAIL: Final = 14
#: How far from the end (non-blank lines) a confidentiality notice may start.
MAX_DISCLAIMER_LINES: Final = 25

_DISCLAIMER_RE: Final = re.compile(
    r"[\W_]{0,6}(?:(?P<strong>caution|disclaimer|confidentiality notice|confidentiality"
    r"|privileged (?:and|&) confidential|haftungsausschluss|avertissement|aviso legal)\b"
    r"|this (?:e-?mail|message|communication)|the information (?:contained )?in this"
    r"|diese (?:e-?mail|nachricht)|ce (?:message|courriel)|este (?:mensaje|correo)"
    r"|questo messaggio|dit (?:e-?mail)?bericht|denna e-?post|tämä viesti)",
    re.IGNORECASE,
)
_DISCLAIMER_FIRST_WORDS: Final = frozenset(
    "caution disclaimer confidentiality privileged haftungsausschluss avertissement aviso this"
    " the diese ce este questo dit denna tämä".split()
)
_DISCLAIMER_INITIALS: Final = frozenset(
    {w[0] for w in _DISCLAIMER_FIRST_WORDS} | {w[0].upper() for w in _DISCLAIMER_FIRST_WORDS}
)
#: What may precede the first word of a notice ("*** CAUTION", "[This email").
_DISCLAIMER_LEAD: Final = " \t*_-=[(#>"
#: ``line.lstrip()[:1] in _RULE_START``, as one match (``\s`` is ``str.isspace``).
_RULE_LINE_RE: Final = re.compile(r"\s*[-_=*~—–]")
#: ``line.lstrip(_DISCLAIMER_LEAD)[:1] in _DISCLAIMER_INITIALS``, as one match.
_DISCLAIMER_GATE_RE: Final = re.compile(
    "[" + re.escape(_DISCLAIMER_LEAD) + "]*[" + "".join(sorted(_DISCLAIMER_INITIALS)) + "]"
)
_CONFIDENTIAL_RE: Final = re.compile(
    r"confidential|privileged|intended (?:solely |only )?for|vertraulich|confidentiel"
    r"|confidencial|riservat|vertrouwelijk|konfidentiell|luottamuksellinen",
    re.IGNORECASE,
)


def split_signature(lines: list[str]) -> tuple[list[str], list[str]]:
    """Return ``(reply_lines, signature_lines)``; the signature may be empty.

    The blank lines between reply and signature go with the signature.
    """
    # The indices of the non-blank lines, and those lines (computed in C, no Python loop).
    content = list(compress(count(), map(str.strip, lines, repeat(BLANK_CHARS))))
    m = len(content)
    if m < 2:
        return lines, []
    texts = list(map(lines.__getitem__, content))
    # Gates run in C over all lines at once (``compress`` of ``Pattern.match``); only the
    # few lines they let through get the full tests.
    hard = {
        pos for pos in compress(count(), map(_RULE_LINE_RE.match, texts))
        if _is_hard_rule(texts[pos]) and not _is_underline(lines, content[pos])
    }
    lo = max(1, m - MAX_DISCLAIMER_LINES)
    hard.update(
        pos for pos in compress(count(lo), map(_DISCLAIMER_GATE_RE.match, texts[lo:]))
        if _is_disclaimer(texts[pos])
    )
    mobile = {
        pos for pos in range(max(1, m - 1 - MAX_FOOTER_TAIL), m) if _is_mobile_footer(texts[pos])
    }
    # Only lines near the end, or just above a separator / footer, can open a signature.
    near: range | list[int] = range(max(1, m - 1 - MAX_SIGNOFF_TAIL), m)
    if hard or mobile:  # the common case has neither: the last lines, in order, suffice
        near_set = set(near) | hard | mobile
        for anchor in hard | mobile:
            near_set.update(range(max(1, anchor - MAX_SIGNOFF_TAIL), anchor))
        near_set.discard(0)
        near = sorted(near_set)
    last_block = m - 1
    while last_block > 0 and content[last_block - 1] == content[last_block] - 1:
        last_block -= 1
    for pos in near:
        t = texts[pos]
        if len(t) > 40 and pos not in hard and pos not in mobile and len(t.strip()) > 40:
            continue  # a long line opens no sign-off (the common case: prose)
        if _opens_signature(texts, pos, hard, mobile, last_block):
            j = content[pos]
            while j > 0 and is_blank(lines[j - 1]):
                j -= 1
            return lines[:j], lines[j:]
    return lines, []


def _is_underline(lines: list[str], j: int) -> bool:
    """A rule as long as the text line right above it underlines a heading ("Total:\n======")."""
    if j == 0 or is_blank(lines[j - 1]) or lines[j].strip() in _DASHES:
        return False
    return abs(len(lines[j].strip()) - len(lines[j - 1].strip())) <= 2


def _is_hard_rule(line: str) -> bool:
    s = line.strip()
    return s in _DASHES or is_delimiter_row(s)


def _opens_signature(
    texts: list[str], pos: int, hard: set[int], mobile: set[int], last_block: int
) -> bool:
    line = texts[pos]
    if len(line) > 200:
        return False
    m = len(texts)
    n_after = m - pos - 1
    stripped = line.strip()
    if stripped in _DASHES:
        return True
    if pos in hard:
        return 0 < n_after <= MAX_ROW_TAIL or _is_disclaimer(line)
    if pos in mobile:
        return True
    if len(stripped) > 40:
        return False  # sign-offs and name lines are short
    if stripped and not (pos == last_block and n_after <= 2) and not (
        _is_closing(stripped) or (stripped[0] in "-/~–—" and _DASH_NAME_RE.match(line))
    ):
        return False  # neither a sign-off nor a closing name block: skip the tail checks
    # The lines under a sign-off, up to a separator / footer / notice, must be few and short.
    stop = next(
        (k for k in range(pos + 1, pos + 2 + MAX_SIGNOFF_TAIL) if k in hard or k in mobile), m
    )
    if stop - pos - 1 > MAX_SIGNOFF_TAIL:
        return False
    if any(len(t) > MAX_SIGNOFF_LINE for t in texts[pos + 1 : stop]):
        return False
    if _is_closing(stripped) or (stripped[0] in "-/~–—" and _DASH_NAME_RE.match(line)):
        return True
    if pos == last_block and n_after <= 2:
        return all(_looks_like_name_line(x) for x in texts[pos:])
    return False


def _looks_like_name_line(line: str) -> bool:
    """A short title-case line: a name, a job title or a company ("ACME Corp.")."""
    s = line.strip()
    words = s.split()
    if not words or len(s) > 40 or len(words) > 5 or _TITLE_LINE_RE.match(s) is None:
        return False
    if s[-1] in "?:!;," or (s[-1] == "." and words[-1] not in _COMPANY_ABBREVIATIONS):
        return False
    return all(w[0].isupper() or not w[0].isalpha() or w in _NAME_PARTICLES for w in words)


def _is_disclaimer(line: str) -> bool:
    """A confidentiality / caution notice a mail server or company appends."""
    head = line.lstrip(_DISCLAIMER_LEAD)[:24]
    if head[:1] not in _DISCLAIMER_INITIALS:
        return False
    words = head.split(None, 1)
    if not words or words[0].rstrip(":.,").casefold() not in _DISCLAIMER_FIRST_WORDS:
        return False
    m = _DISCLAIMER_RE.match(line)
    if m is None:
        return False
    return m.group("strong") is not None or _CONFIDENTIAL_RE.search(line[:300]) is not None


def is_closing(line: str) -> bool:
    """True for a closing line ("Thanks,", "Kind regards", "Mit freundlichen Grüßen")."""
    return _is_closing(line.strip())


def is_client_footer(line: str) -> bool:
    """True for a mobile or mail-client footer ("Sent from my iPhone", "Get Outlook for iOS")."""
    return _is_mobile_footer(line)


def _is_closing(stripped: str) -> bool:
    first = stripped.split(None, 1)[0].strip(",.!:;-~").casefold() if stripped else ""
    return first in _CLOSING_FIRST_WORDS and _CLOSING_RE.match(stripped) is not None


def _is_mobile_footer(line: str) -> bool:
    s = line.strip(" \t>")
    if not s or len(s) > 120:
        return False
    low = s.casefold()
    if "outlook" in low and len(s.split()) <= 10 and _OUTLOOK_APP_RE.search(s) is not None and (
        _PLATFORM_RE.search(s) is not None and _GET_RE.search(s) is not None
    ):
        return True
    if low.rstrip(" .!").endswith(MOBILE_FOOTER_ENDINGS):
        return len(s) <= 60 and _DEVICE_RE.search(s) is not None
    if low.split(None, 1)[0] not in _MOBILE_FIRST_WORDS and not low.startswith(_MOBILE_OPENINGS):
        return False
    if _MOBILE_RE.match(line) is None or _DEVICE_HINT_RE.search(s) is None:
        return False
    note = _NOTE_START_RE.search(s)
    # "Sent from my desk, since ...": a sentence, not a footer with a note.
    return note is None or _DEVICE_RE.search(s[: note.start()]) is not None
