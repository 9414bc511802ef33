"""Quote headers and delimiters: the per-language word tables and the line tests built on them.

Everything here looks at one line, or at two to four lines joined with spaces (mail
clients wrap long "On ... wrote:" lines).  Regexes are compiled once, at import time,
from the tables; every pattern is anchored or length-bounded so no input can make them
backtrack badly.
"""

from __future__ import annotations

import re
from typing import Final

from inbound.extract.model import REPLY_ABOVE_MARKERS

__all__ = [
    "BLANK_CHARS",
    "FIELD_KINDS",
    "ends_with_verb",
    "field_kind",
    "find_gateway_marker",
    "forward_kept_marker",
    "forwarded_by_delimiter",
    "is_bare_lotus_date_line",
    "is_blank",
    "is_delimiter_row",
    "is_framed_title",
    "is_lotus_date_line",
    "is_lotus_name_line",
    "is_quote_line",
    "looks_like_mail_header",
    "may_end_header",
    "midline_header_start",
    "opens_attribution",
    "original_message_delimiter",
    "quote_header_kind",
    "starts_like_header",
]

# --------------------------------------------------------------------------- tables

#: Words that open an "On <date>, <name> wrote:" header, per language.
ON_WORDS: Final = (
    "On", "Am", "Le", "El", "Il", "Il giorno", "Em", "Op", "W dniu", "Dnia", "Den", "På",
    "Vào", "Dne", "Dňa", "В", "Ve", "Pada", "Στις", "La", "Pe", "Na", "Dana", "Noong", "在",
    "於", "في", "בתאריך", "در تاریخ", "เมื่อ",
)

#: The verb of an attribution line ("wrote", "a écrit", "schrieb" ...), per language.
WROTE_VERBS: Final = (
    "wrote", "writes", "has written", "schrieb", "hat geschrieben", "a écrit", "écrit",
    "escribió", "escribio", "ha escrito", "ha scritto", "scrisse", "escreveu", "schreef",
    "heeft geschreven", "het volgende geschreven", "geschreven", "napisał\\(a\\)", "napisał",
    "napisała", "napisal", "pisze", "napisał/a", "skrev", "skriver", "skrifaði",
    "kirjoitti", "napsal\\(a\\)", "napsal", "napsala", "napísal\\(a\\)", "napísal",
    "написал\\(а\\)", "написал", "написала", "пишет", "пише", "написав", "написа",
    "έγραψε", "yazdı", "şunu yazdı", "írta", "ezt írta", "a scris", "je napisal",
    "je napisala", "rašė", "rakstīja", "kirjutas", "đã viết", "menulis", "kirjoitti seuraavaa",
    "nadesłał", "nadesłała", "napisała\\(a\\)", "napisao", "napisala", "napisao je",
    "napisala je", "napisao/la", "je napisao", "je napisao/la", "написао", "је написао",
    "је написао/ла", "geschrieben", "folgendes geschrieben", "va escriure", "ha escrit",
    "escrigué", "sumulat", "napisana przez", "כתב", "כתבה", "כתב/ה", "كتب", "نوشت", "लिखा",
    "ने लिखा", "şunları yazdı",
)

#: Attribution verbs of scripts without word spaces (matched anywhere, no word boundary).
CJK_VERBS: Final = (
    "写道", "寫道", "のメッセージ", "のメール", "書きました", "が書きました", "작성", "님이 작성",
    "เขียนว่า", "เขียน",
    "작성하였습니다", "작성했습니다",
)

#: Outlook / Lotus header field names, per language, by the field they name.
FIELD_KINDS: Final[dict[str, tuple[str, ...]]] = {
    "from": (
        "From", "Von", "De", "Da", "Van", "Od", "Från", "Fra", "Frá", "Lähettäjä", "От",
        "Від", "差出人", "发件人", "發件人", "寄件者", "보낸 사람", "Kimden", "Gönderen",
        "Feladó", "Από", "Afzender", "Absender", "Expéditeur", "Remitente", "Mittente",
        "Saatja", "Nuo", "No", "Pošiljatelj", "Pošiljalac", "Odesílatel", "Sent by",
        "Gesendet von", "Envoyé par", "Enviado por", "De la", "Šalje", "Từ", "Dari",
        "Daripada", "จาก", "מאת", "من",
    ),
    "sent": (
        "Sent", "Date", "Gesendet", "Datum", "Envoyé", "Enviado", "Enviada", "Enviado el",
        "Enviado em", "Fecha", "Inviato", "Data", "Verzonden", "Verstuurd", "Wysłano",
        "Wysłane", "Skickat", "Sendt", "Dato", "Lähetetty", "Päivämäärä", "Отправлено",
        "Дата", "Надіслано", "送信日時", "日付", "发送时间", "發送時間", "日期", "傳送時間",
        "날짜", "보낸 날짜", "Tarih", "Gönderildi", "Gönderilme", "Odesláno", "Elküldve",
        "Dátum", "Küldve", "Ημερομηνία", "Στάλθηκε", "Trimis", "Poslano", "Išsiųsta",
        "Изпратено", "Odoslané", "Poslato", "Nosūtīts", "Saadetud", "Enviat", "Enviat el",
        "Đã gửi", "Dikirim", "Dihantar", "ส่ง", "נשלח", "تم الإرسال", "寄件日期",
    ),
    "to": (
        "To", "An", "À", "A", "Para", "Aan", "Do", "Till", "Til", "Vastaanottaja", "Кому",
        "宛先", "收件人", "收件者", "받는 사람", "Kime", "Komu", "Címzett", "Προς", "Adresát",
        "Destinatario", "Destinataire", "Empfänger", "Către", "Prima", "Kam", "Mottaker",
        "До", "Za", "Adressaat", "Per a", "Đến", "Kepada", "ถึง", "אל", "إلى",
    ),
    "cc": (
        "Cc", "CC", "Kopie", "Kopia", "Kopio", "Копия", "Копія", "抄送", "副本", "참조", "Bilgi",
        "Kópia", "Kopija", "Koopia", "Afrit", "Kopi", "Як", "Κοιν.", "עותק", "نسخة", "สำเนาถึง",
        "A/c", "Sk",
    ),
    "subject": (
        "Subject", "Betreff", "Objet", "Asunto", "Oggetto", "Onderwerp", "Temat", "Ämne",
        "Emne", "Aihe", "Тема", "件名", "主题", "主旨", "제목", "Konu", "Předmět", "Tárgy",
        "Θέμα", "Assunto", "Subiect", "Predmet", "Tema", "Efni", "Teema", "Относно", "Zadeva",
        "Tēma", "Assumpte", "Chủ đề", "Subjek", "Perihal", "เรื่อง", "נושא", "الموضوع",
    ),
    "reply_to": ("Reply-To", "Antwort an", "Répondre à", "Responder a"),
    # Fields that appear inside header blocks but do not make one on their own.
    "other": (
        "Organization", "Organisation", "Organización", "Importance", "Wichtigkeit",
        "Priorité", "Attachments", "Anlagen", "Pièces jointes", "Vedhæftet", "Bilagor",
        "Liitteet", "Załączniki", "Přílohy", "Bcc", "DW", "Másolatot kap",
    ),
}

#: "-----Original Message-----" and its translations (the dashes are optional in the table).
ORIGINAL_MESSAGE: Final = (
    "Original Message", "Reply Message", "Original", "Ursprüngliche Nachricht",
    "Ursprungliche Nachricht", "Originalnachricht", "Antwort Nachricht",
    "Message d'origine", "Message d’origine", "Message original", "Mensaje original",
    "Mensaje Original", "Messaggio originale", "Messaggio Originale", "Mensagem original",
    "Mensagem Original", "Oorspronkelijk bericht", "Origineel bericht", "Oprindelig meddelelse",
    "Oprindelig besked", "Opprinnelig melding", "Ursprungligt meddelande",
    "Alkuperäinen viesti", "Oryginalna wiadomość", "Wiadomość oryginalna", "Původní zpráva",
    "Pôvodná správa", "Исходное сообщение", "Оригинальное сообщение", "Початкове повідомлення",
    "Αρχικό μήνυμα", "Eredeti üzenet", "Orijinal Mesaj", "Özgün İleti", "Mesaj original",
    "Izvorna poruka", "原始邮件", "原始郵件", "元のメッセージ", "원본 메시지", "Originalna poruka",
    "Originalno sporočilo", "Изходно съобщение", "Оригинално съобщение", "Вихідне повідомлення",
    "Tin nhắn gốc", "Thư gốc", "Pesan asli", "Mesej asal", "Mensatge original", "Upprunaleg skilaboð",
    "Algne kiri", "Pradinis laiškas", "Sākotnējā ziņa", "ההודעה המקורית", "الرسالة الأصلية",
    "ข้อความต้นฉบับ", "原始訊息",
)

#: Markers of a message forwarded on purpose: what follows is kept.
FORWARD_MARKERS: Final = (
    "Forwarded message", "Forwarded Message", "Weitergeleitete Nachricht", "Message transféré",
    "Message transmis", "Mensaje reenviado", "Messaggio inoltrato", "Mensagem encaminhada",
    "Doorgestuurd bericht", "Vidarebefordrat meddelande", "Videresendt meddelelse",
    "Videresendt melding", "Välitetty viesti", "Przekazana wiadomość", "Přeposlaná zpráva",
    "Пересылаемое сообщение", "Переслане повідомлення", "Προωθημένο μήνυμα",
    "Továbbított üzenet", "İletilen ileti", "転送されたメッセージ", "转发的邮件", "轉寄的郵件",
    "전달된 메시지", "Proslijeđena poruka", "Posredovano sporočilo", "Prosleđena poruka",
    "Препратено съобщение", "Preposlaná správa", "Mesaj redirecționat", "Pesan terusan",
    "Tin nhắn đã chuyển tiếp", "Missatge reenviat", "Edasi saadetud kiri", "Persiųstas laiškas",
    "Pārsūtīta ziņa", "הודעה שהועברה", "رسالة تمت إعادة توجيهها", "ข้อความที่ส่งต่อ",
    "Videresendt e-post", "Doorgestuurd e-mailbericht",
)

#: Apple Mail style forward openers ("Begin forwarded message:").
FORWARD_OPENERS: Final = (
    "Begin forwarded message", "Anfang der weitergeleiteten Nachricht",
    "Début du message réexpédié", "Début du message transféré", "Inicio del mensaje reenviado",
    "Comienzo del mensaje reenviado", "Inizio messaggio inoltrato", "Begin doorgestuurd bericht",
    "Início da mensagem reencaminhada", "Início da mensagem encaminhada", "Vidarebefordrat brev",
    "Videresendt brev", "Videresendt besked", "Välitetty viesti alkaa", "Początek przekazywanej wiadomości",
    "Začátek přeposílané zprávy", "Начало переадресованного сообщения", "Пересланное сообщение",
    "転送されたメッセージ", "转发的邮件", "전달된 메시지",
)

# --------------------------------------------------------------------------- compiled


def _alt(words: tuple[str, ...] | list[str], escape: bool = True) -> str:
    items = sorted(set(words), key=len, reverse=True)
    return "|".join(re.escape(w) if escape else w for w in items)



#: Characters a blank line may consist of.
#: Every character ``str.split()`` treats as whitespace, plus zero-width space and BOM: a line of
#: only these is blank (a narrower set once let ``\x85`` lines through to ``split()[0]``).
BLANK_CHARS: Final = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
    "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000\u200b\ufeff"
)
_FIELD_NAME_TO_KIND: Final = {
    name.casefold(): kind for kind, names in FIELD_KINDS.items() for name in names
}
#: Around a header label: spaces and Markdown-ish bold/underline marks ("*From:*").
_LABEL_STRIP: Final = " \t*_"
#: What a separator row is made of; a rule-led line with nothing else is no marker.
_RULE_CHARS: Final = " \t-_=*~:"

_ORIGINAL_RE: Final = re.compile(
    r"[ \t]*[-_=*]{2,}[ \t]*(?:" + _alt(ORIGINAL_MESSAGE) + r")[ \t]*[-_=*]{2,}[ \t]*:?[ \t]*$",
    re.IGNORECASE,
)
_FORWARDED_BY_RE: Final = re.compile(r"[ \t]*-{3,}[ \t]*Forwarded by\b", re.IGNORECASE)
_FORWARD_KEEP_RE: Final = re.compile(
    r"[ \t]*(?:[-_=*]{2,}[ \t]*(?:" + _alt(FORWARD_MARKERS) + r")[ \t]*[-_=*]{2,}"
    r"|(?:" + _alt(FORWARD_OPENERS) + r")[ \t]*:)",
    re.IGNORECASE,
)
_FRAMED_TITLE_RE: Final = re.compile(
    r"[ \t]*[-_=*]{3,}[ \t]*[^\W\d_][^-_=*:<>@]{0,50}?[ \t]*[-_=*]{3,}[ \t]*:?[ \t]*$"
)
_DELIMITER_ROW_RE: Final = re.compile(r"[ \t]*(?:[-_=*~][ \t]?){5,}[ \t]*$")

def _marker_words(marker: str) -> str:
    """The words of a reply-above marker as a pattern: any run of spaces between them, or a line
    break followed by a quote prefix (a client that wrapped the quoted marker)."""
    return r"(?:[ \t]+|[ \t]*\n[> \t]*)".join(re.escape(w) for w in marker.strip("#- ").split())


_MARKER_GAP: Final = r"[ \t]*(?:\n[> \t]*)?"
_GATEWAY_RE: Final = re.compile(
    r"#{1,3}-?" + _MARKER_GAP + "(?:"
    + "|".join(_marker_words(m) for m in sorted(set(REPLY_ABOVE_MARKERS.values()), key=len, reverse=True))
    + ")" + _MARKER_GAP + r"-?#{1,3}",
    re.IGNORECASE,
)
#: How far after a "#" a marker can end (the longest marker, wrapped over a few quoted lines).
_GATEWAY_WINDOW: Final = 2 * max(len(m) for m in REPLY_ABOVE_MARKERS.values())

_ON_START_RE: Final = re.compile(r"[-–—>*\s]*(?:" + _alt(ON_WORDS) + r")\b")
_LEAD_CHARS: Final = "-–—>* \t\u00a0"
_ON_FIRST_WORDS: Final = frozenset(w.split()[0].casefold() for w in ON_WORDS)
# A date/time-led start: "2014-10-17 11:28", "mån 4 dec. 2024", "пн, 1 янв.", "2022年1月1日".
_DATE_START_RE: Final = re.compile(r"[-–—>*\s]*(?:(?P<wd>[^\W\d_]{1,4})\.?,?[ \t]+)?\d")
# The leading lookahead lets the engine skip to digits (4x faster on prose).
_DATE_RE: Final = re.compile(
    r"(?=\d)(?:\d{1,4}[./-]\d{1,2}[./-]\d{1,4}|\d{1,2}[:.]\d{2}\b|(?<!\w)(?:19|20)\d{2}\b"
    r"|\d+[年년])"
)
_EMAIL_AT_RE: Final = re.compile(r"[\w.+-]@[\w-]")

_VERBS: Final = _alt(WROTE_VERBS, escape=False)
_CJK: Final = _alt(CJK_VERBS)
# The verb sits inside and the line ends with a colon: "... skrev Anna <a@b.se>:".
_VERB_INSIDE_RE: Final = re.compile(
    r"(?:(?<![\w])(?:" + _VERBS + r")(?![\w])|(?:" + _CJK + r"))", re.IGNORECASE
)
_VERB_SET: Final = frozenset(v.replace("\\", "").casefold() for v in WROTE_VERBS)
_VERB_LAST_WORDS: Final = frozenset(v.rsplit(None, 1)[-1] for v in _VERB_SET)
_TRAILING_WORD_RE: Final = re.compile(r"[^\W\d_]+(?:\([^\W\d_]+\)|/[^\W\d_]+)?$")
_SENT_END_RE: Final = re.compile(r"\bsent[ \t]*:[ \t]*$", re.IGNORECASE)
_ENDS_COLON_RE: Final = re.compile(r"[:：][ \t]*$")
# "... <name@host>:" / "... (name@host):" / "... name@host:" without any verb (Gmail ru/ja).
_EMAIL_COLON_END_RE: Final = re.compile(r"@[\w.-]+[>)\]]?[ \t]*[:：][ \t]*$")
# "2011/4/7 Nathan <support@example.com>" (no colon at all), only before a quote block.
_VERB_THEN_DATE_RE: Final = re.compile(
    r"(?<![\w])(?:" + _VERBS + r")[ \t,]+(?:(?:on|am|le|el|il|em|op|den|dne|w dniu)[ \t]+)?"
    r"(?:[^\W\d_]{1,4}\.?,?[ \t]+)?\d",
    re.IGNORECASE,
)
_DATE_EMAIL_RE: Final = re.compile(r"[ \t]*\d{1,4}[./-]\d{1,2}[./-]\d{1,4}\b.{0,120}@[\w.-]+>?[ \t]*$")
# "reply text On Wed, Apr 4, 2012 at ..." - where a header starts inside a line.
_MIDLINE_ON_RE: Final = re.compile(
    r"(?:(?<=\s)|(?<=-{2}))(?:On|Am|Le|El|Il|Op|Em)[ \t]+"
    r"(?:\d|(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun|Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
    r"|(?:lun|mar|mer|jeu|ven|sam|dim|Mo|Di|Mi|Do|Fr|Sa|So)\w{0,6}[.,])"
)
_LOTUS_DATE_LINE_RE: Final = re.compile(
    r"[ \t]*\d{1,4}([./-])\d{1,2}\1\d{2,4}[ \t]+\d{1,2}:\d{2}(?::\d{2})?[ \t]*(?:[AP]M)?[ \t]*$",
    re.IGNORECASE,
)
_ON_DATE_RE: Final = re.compile(
    r"\bon[ \t]+\d{1,2}/\d{1,2}/\d{2,4}[ \t]+\d{1,2}:\d{2}", re.IGNORECASE
)
_NAME_AT_ORG_RE: Final = re.compile(r"[ \t]*[\w .,'&/-]{1,60}@[\w .&-]{1,40}$")
_NAME_LINE_RE: Final = re.compile(r"[ \t]*[A-Z][\w.'-]*(?:[ \t]+[\w.'-]+){0,4}[ \t]*$")

_BRACKETED_EMAIL_RE: Final = re.compile(r"[<(\[][ \t]*(?:mailto:)?[\w.+-]+@[\w-]+(?:\.[\w-]+)*[ \t]*[>)\]]")
_TIME_RE: Final = re.compile(r"(?=\d)(?<!\d)\d{1,2}[:.]\d{2}(?!\d)")

#: Longest line (characters) we try to read as a header; longer lines are text.
MAX_HEADER_CHARS: Final = 500
#: Most words of an attribution recognised by its date and address alone.
MAX_HEADER_WORDS: Final = 40


# --------------------------------------------------------------------------- tests


def is_blank(line: str) -> bool:
    """True for empty or whitespace-only lines (including NBSP and zero-width spaces)."""
    return not line.strip(BLANK_CHARS)


def is_quote_line(line: str) -> bool:
    """True for a line quoted with ``>``."""
    return line.lstrip(" \t").startswith(">")


def find_gateway_marker(text: str) -> int:
    """Offset of any of :data:`REPLY_ABOVE_MARKERS` (quoted or not, any case, in any language) in
    ``text``, or -1."""
    pos = text.find("##")
    while pos != -1:
        # Try an anchored match at each "##" only (few in a reply): no case-insensitive scan of
        # the whole text.
        if _GATEWAY_RE.match(text, pos, pos + _GATEWAY_WINDOW) is not None:
            return pos
        pos = text.find("##", pos + 2)
    return -1


def field_kind(line: str) -> str | None:
    """The header field ("from", "sent", "to", "cc", "subject", "reply_to") a line opens.

    The label is what precedes the first colon, without spaces and bold/underline marks
    ("*Von:*", "De :", "__From:__"); it is looked up, not matched, so a line costs O(1).
    """
    head = line[:40]
    colon = head.find(":")
    wide = head.find("：")
    if wide != -1 and (colon == -1 or wide < colon):
        colon = wide
    if colon == -1 or len(line) > MAX_HEADER_CHARS:
        return None
    label = head[:colon].strip(_LABEL_STRIP)
    return _FIELD_NAME_TO_KIND.get(label.casefold()) if label else None


def _starts_with_rule(line: str) -> bool:
    return line.lstrip(" \t")[:1] in ("-", "_", "=", "*") and bool(line.strip(_RULE_CHARS))


def original_message_delimiter(line: str) -> bool:
    """True for "-----Original Message-----" and its translations."""
    return len(line) <= 120 and _starts_with_rule(line) and _ORIGINAL_RE.match(line) is not None


def is_framed_title(line: str) -> bool:
    """True for a short title between rules ("-------- Poruka --------"), any language."""
    return len(line) <= 120 and _starts_with_rule(line) and _FRAMED_TITLE_RE.match(line) is not None


def forwarded_by_delimiter(line: str) -> bool:
    """True for Lotus Notes' "----- Forwarded by Name/Org on <date> -----" line."""
    return _starts_with_rule(line) and _FORWARDED_BY_RE.match(line) is not None


def forward_kept_marker(line: str) -> bool:
    """True for a "---------- Forwarded message ---------" / "Begin forwarded message:" line."""
    if len(line) > 160 or not (_starts_with_rule(line) or line.rstrip().endswith((":", "："))):
        return False
    return _FORWARD_KEEP_RE.match(line) is not None


def may_end_header(line: str) -> bool:
    """Cheap test: can an attribution end on this line (colon, dash, ``>`` or a verb)?"""
    tail = line.rstrip()[-60:]
    if not tail:
        return False
    if tail[-1] in ":：->":
        return True
    return tail[-1].isalpha() and ends_with_verb(tail)


def ends_with_verb(text: str) -> bool:
    """True when ``text`` ends with an attribution verb ("wrote", "schrieb:", "写道：")."""
    t = text[-80:].rstrip(" \t:：-–—").casefold()
    if not t:
        return False
    if t.endswith(CJK_VERBS):
        return True
    words = t.split()
    last = words[-1]
    if last not in _VERB_LAST_WORDS:
        if last.isalpha():
            return False  # the common case: a plain last word that is no verb
        m = _TRAILING_WORD_RE.search(last[-30:])
        if m is None or m.group() not in _VERB_LAST_WORDS:
            return False
        last = m.group()
    if last in _VERB_SET:
        return True
    if len(words) >= 2 and f"{words[-2]} {last}" in _VERB_SET:
        return True
    return len(words) >= 3 and f"{words[-3]} {words[-2]} {last}" in _VERB_SET


def is_delimiter_row(line: str) -> bool:
    """True for a row of underscores, dashes or equals signs (a separator line)."""
    return _DELIMITER_ROW_RE.match(line) is not None


def is_lotus_date_line(line: str) -> bool:
    """True for a Lotus Notes date line ("03/26/2001 10:20 AM") or "X on <date> <time>"."""
    if len(line) > 200 or ("/" not in line and not line.lstrip()[:1].isdigit()):
        return False
    return _LOTUS_DATE_LINE_RE.match(line) is not None or _ON_DATE_RE.search(line) is not None


def is_bare_lotus_date_line(line: str) -> bool:
    """True for a Lotus date line alone ("03/26/2001 10:20 AM"), not "Name on <date>"."""
    return len(line) <= 200 and _LOTUS_DATE_LINE_RE.match(line) is not None


def is_lotus_name_line(line: str) -> bool:
    """True for a short name line, or Lotus "Name/Org@Domain" ("Mary Poorman@ENRON")."""
    if len(line) > 80:
        return False
    return _NAME_AT_ORG_RE.match(line) is not None or _NAME_LINE_RE.match(line) is not None


def _word_count(text: str) -> int:
    return len(text.split())


def quote_header_kind(
    joined: str, *, multiline: bool, first_line: str, followed_by_quote: bool
) -> str | None:
    """Classify ``joined`` (one line, or lines joined by spaces) as an attribution line.

    Returns "on_wrote" for "On <date>, <name> wrote:" in any language, "date_email" for
    verb-less "<date> <name> <email>:" attributions, or None.
    """
    s = joined.strip()
    if not s or len(s) > MAX_HEADER_CHARS:
        return None
    word = _first_word(s)
    on_start = bool(word) and _on_start(s, word)
    date_start = bool(word) and _date_start(s, word)
    has_email = _has_email(s)
    if multiline and not (on_start or date_start or "@" in first_line or "<" in first_line):
        return None
    has_date = _DATE_RE.search(s) is not None
    if on_start and has_date and _SENT_END_RE.search(s[-12:]) is not None:
        return "on_wrote"  # "On <date>, <name> sent:"
    if ends_with_verb(s):
        if on_start and (has_date or has_email or followed_by_quote or _word_count(s) <= 12):
            return "on_wrote"
        if has_email or has_date:
            return "on_wrote"
        if followed_by_quote and _word_count(s) <= 8:
            return "on_wrote"
        return None
    if _ENDS_COLON_RE.search(s) is None:
        if followed_by_quote and not multiline and _DATE_EMAIL_RE.match(s) is not None:
            return "date_email"
        return None
    verb_inside = _VERB_INSIDE_RE.search(s) is not None
    has_time = _TIME_RE.search(s) is not None
    # "Am <date> um <time> schrieb Anna <a@b.de>:", "Am <date> um <time> schrieb Anna:" (a
    # bare year is not enough: "On 5 March 2024 I wrote to you:" is the customer's line).
    if verb_inside and (has_email or (has_date and has_time)) and (
        on_start or date_start or has_email
    ):
        return "on_wrote"
    if has_email and has_date and _EMAIL_COLON_END_RE.search(s) is not None:
        return "date_email"
    # Any language: a date and a <bracketed> address, ending with a colon ("... ने लिखा:").
    if has_date and has_email and _BRACKETED_EMAIL_RE.search(s) is not None and (
        _word_count(s) <= MAX_HEADER_WORDS
    ):
        return "on_wrote"
    # "Name wrote on 05/03/2024 09:41:" (Thunderbird's "<name> wrote on <date>:" form).
    if has_time and _VERB_THEN_DATE_RE.search(s) is not None and _word_count(s) <= 12:
        return "on_wrote"
    return None


def _has_email(s: str) -> bool:
    """True when ``s`` holds an address ("a@b"); looks only around each "@"."""
    at = s.find("@")
    while at > 0:
        if _EMAIL_AT_RE.match(s, at - 1) is not None:
            return True
        at = s.find("@", at + 1)
    return False


def _first_word(s: str) -> str:
    words = s.lstrip(_LEAD_CHARS)[:40].split(None, 1)
    return words[0] if words else ""


def _on_start(s: str, word: str | None = None) -> bool:
    """True when ``s`` opens with an "On"-word ("On", "Am", "Le", "W dniu", "在" ...)."""
    if word is None:
        word = _first_word(s)
    if not word or (word.casefold() not in _ON_FIRST_WORDS and word[0] not in _ON_FIRST_WORDS):
        return False
    return _ON_START_RE.match(s) is not None


def looks_like_mail_header(block: str) -> bool:
    """True when a header block carries an address or a date/time, as mail headers do."""
    return "@" in block or _DATE_RE.search(block) is not None


def _date_start(s: str, word: str | None = None) -> bool:
    """True when ``s`` opens with a date, or a lower-case weekday then a number ("mån 4 dec")."""
    if word is None:
        word = _first_word(s)
    if not word or not (word[0].isdigit() or (len(word) <= 5 and word[0].islower())):
        return False
    m = _DATE_START_RE.match(s)
    return m is not None and (m.group("wd") is None or m.group("wd").islower())


def starts_like_header(s: str) -> bool:
    """True when ``s`` opens like an attribution: an "On"-word or a date."""
    word = _first_word(s)
    return bool(word) and (_on_start(s, word) or _date_start(s, word))


def opens_attribution(s: str) -> bool:
    """True when ``s`` opens like an attribution and holds a date or time near its start."""
    return starts_like_header(s) and _DATE_RE.search(s, 0, 80) is not None


def midline_header_start(line: str) -> int:
    """Where an "On <date> ... wrote:" header starts inside a line of reply text, or -1."""
    if len(line) > MAX_HEADER_CHARS or not ends_with_verb(line) or starts_like_header(line):
        return -1
    m = _MIDLINE_ON_RE.search(line)
    if m is None or m.start() == 0:
        return -1
    return m.start()
