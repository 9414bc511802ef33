"""Reply extraction across real client formats and languages, and lines that must stay.

Every case is written for this project: a short reply, then the history the way a mail
client lays it out (Gmail, Outlook desktop/web/mobile, Apple Mail, Thunderbird, Yahoo,
AOL, Android/Samsung, Lotus Notes) in many locales, or a reply whose lines only look like
history (nothing may be cut from those).
"""

from __future__ import annotations

import re
from collections import Counter

import pytest

from inbound.extract import extract_reply

REPLY = "Das Paket ist immer noch nicht da.\nKönnen Sie bitte nachsehen?"
QUOTED = "> Hello,\n>\n> we will get back to you soon.\n>\n> The support team"
UNQUOTED = "Hello,\n\nwe will get back to you soon.\n\nThe support team"
ADDR = "support@example.com"

#: Gmail's attribution line in the locales it ships ("On <date> <name> <addr> wrote:").
GMAIL = {
    "en": f"On Tue, Mar 5, 2024 at 9:41 AM Support <{ADDR}> wrote:",
    "de": f"Am Di., 5. März 2024 um 09:41 Uhr schrieb Support <{ADDR}>:",
    "fr": f"Le mar. 5 mars 2024 à 09:41, Support <{ADDR}> a écrit :",
    "es": f"El mar, 5 mar 2024 a las 9:41, Support (<{ADDR}>) escribió:",
    "it": f"Il giorno mar 5 mar 2024 alle ore 09:41 Support <{ADDR}> ha scritto:",
    "pt-BR": f"Em ter., 5 de mar. de 2024 às 09:41, Support <{ADDR}> escreveu:",
    "pt-PT": f"Support <{ADDR}> escreveu no dia terça, 5/03/2024 à(s) 09:41:",
    "nl": f"Op di 5 mrt 2024 om 09:41 schreef Support <{ADDR}>:",
    "sv": f"Den tis 5 mars 2024 kl 09:41 skrev Support <{ADDR}>:",
    "da": f"Den tir. 5. mar. 2024 kl. 09.41 skrev Support <{ADDR}>:",
    "no": f"tir. 5. mar. 2024 kl. 09:41 skrev Support <{ADDR}>:",
    "fi": f"ti 5. maalisk. 2024 klo 9.41 Support ({ADDR}) kirjoitti:",
    "pl": f"wt., 5 mar 2024 o 09:41 Support <{ADDR}> napisał(a):",
    "cs": f"út 5. 3. 2024 v 9:41 odesílatel Support <{ADDR}> napsal:",
    "sk": f"ut 5. 3. 2024 o 9:41 Support <{ADDR}> napísal(a):",
    "ru": f"вт, 5 мар. 2024 г. в 09:41, Support <{ADDR}>:",
    "uk": f"вт, 5 бер. 2024 р. о 09:41 Support <{ADDR}> пише:",
    "bg": f"вт, 5.03.2024 г. в 9:41 Support <{ADDR}> написа:",
    "ja": f"2024年3月5日(火) 9:41 Support <{ADDR}>:",
    "zh-CN": f"Support <{ADDR}> 于2024年3月5日周二 09:41写道：",
    "zh-TW": f"Support <{ADDR}> 於 2024年3月5日 週二 上午9:41寫道：",
    "ko": f"2024년 3월 5일 (화) 오전 9:41, Support <{ADDR}>님이 작성:",
    "tr": f"Support <{ADDR}>, 5 Mar 2024 Sal, 09:41 tarihinde şunu yazdı:",
    "hu": f"Support <{ADDR}> (időpont: 2024. márc. 5., K, 9:41) ezt írta:",
    "el": f"Στις Τρί 5 Μαρ 2024 στις 9:41 π.μ., ο/η Support <{ADDR}> έγραψε:",
    "ro": f"Pe mar., 5 mar. 2024 la 09:41, Support <{ADDR}> a scris:",
    "vi": f"Vào Th 3, 5 thg 3, 2024 vào lúc 09:41 Support <{ADDR}> đã viết:",
    "id": f"Pada tanggal Sel, 5 Mar 2024 pukul 09.41 Support <{ADDR}> menulis:",
    "hr": f"uto, 5. ožu 2024. u 09:41 Support <{ADDR}> napisao je:",
    "sl": f"tor., 5. mar. 2024 ob 09:41 je Support <{ADDR}> napisal(a):",
    "sr": f"уто, 5. мар 2024. у 09:41 Support <{ADDR}> је написао/ла:",
    "lt": f"2024-03-05, an, 09:41, Support <{ADDR}> rašė:",
    "lv": f"otrd., 2024. g. 5. marts, plkst. 09:41 — lietotājs Support (<{ADDR}>) rakstīja:",
    "et": f"T, 5. märts 2024 kell 09:41 Support <{ADDR}> kirjutas:",
    "ca": f"El dt., 5 de març 2024 a les 9:41, Support (<{ADDR}>) va escriure:",
    "is": f"þri., 5. mar. 2024 kl. 09:41 skrifaði Support <{ADDR}>:",
    "he": f"בתאריך יום ג׳, 5 במרץ 2024 ב-9:41 מאת Support <{ADDR}>:",
    "ar": f"في الثلاثاء، 5 مارس 2024 في 9:41 ص تمت كتابة ما يلي بواسطة Support <{ADDR}>:",
    "th": f"เมื่อ อ. 5 มี.ค. 2024 09:41 Support <{ADDR}> เขียนว่า:",
    "hi": f"मंगल, 5 मार्च 2024 को 9:41 am पर Support <{ADDR}> ने लिखा:",
    "fa": f"در تاریخ سه‌شنبه ۵ مارس ۲۰۲۴ ساعت ۹:۴۱ Support <{ADDR}> نوشت:",
    "ms": f"Pada Sel, 5 Mac 2024 pada 9:41 PG Support <{ADDR}> menulis:",
    "fil": f"Noong Mar, Mar 5, 2024 nang 9:41 AM, sumulat si Support <{ADDR}>:",
    "en-wrapped-2": f"On Tue, Mar 5, 2024 at 9:41 AM Support Team of Example Shop <\n{ADDR}> wrote:",
    "en-wrapped-3": f"On Tue, Mar 5, 2024 at 9:41 AM Support Team of Example\nShop <{ADDR}>\nwrote:",
    "en-addr-own-line": f"On Tue, Mar 5, 2024 at 9:41 AM Support Team\n<{ADDR}> wrote:",
    "de-wrapped": f"Am Di., 5. März 2024 um 09:41 Uhr schrieb Support Team\n<{ADDR}>:",
    "fr-wrapped": f"Le mar. 5 mars 2024 à 09:41, Support Team <{ADDR}> a\nécrit :",
}

#: Apple Mail (macOS / iOS): "On <date>, at <time>, <name> wrote:" and its translations.
APPLE = {
    "en": f"On Mar 5, 2024, at 09:41, Support <{ADDR}> wrote:",
    "en-name-only": "On Mar 5, 2024, at 09:41, Support Team wrote:",
    "de": f"Am 05.03.2024 um 09:41 schrieb Support <{ADDR}>:",
    "fr": f"Le 5 mars 2024 à 09:41, Support <{ADDR}> a écrit :",
    "es": f"El 5 mar 2024, a las 9:41, Support <{ADDR}> escribió:",
    "it": f"Il giorno 5 mar 2024, alle ore 09:41, Support <{ADDR}> ha scritto:",
    "pt": f"Em 5 de mar. de 2024, à(s) 09:41, Support <{ADDR}> escreveu:",
    "nl": f"Op 5 mrt 2024 om 09:41 heeft Support <{ADDR}> het volgende geschreven:",
    "sv": f"5 mars 2024 kl. 09:41 skrev Support <{ADDR}>:",
    "da": f"Den 5. mar. 2024 kl. 09.41 skrev Support <{ADDR}>:",
    "no": f"5. mar. 2024 kl. 09:41 skrev Support <{ADDR}>:",
    "fi": f"5.3.2024 kello 9.41, Support <{ADDR}> kirjoitti:",
    "pl": f"Wiadomość napisana przez Support <{ADDR}> w dniu 05.03.2024, o godz. 09:41:",
    "ru": f"5 марта 2024 г., в 09:41, Support <{ADDR}> написал(а):",
    "uk": f"5 бер. 2024 р. о 09:41 Support <{ADDR}> написав(-ла):",
    "ja": f"2024/03/05 9:41、Support <{ADDR}>のメール:",
    "zh": f"2024年3月5日 上午9:41，Support <{ADDR}> 写道：",
    "ko": f"2024. 3. 5. 오전 9:41, Support <{ADDR}> 작성:",
    "cs": f"5. 3. 2024 v 9:41, Support <{ADDR}>:",
    "sk": f"5. 3. 2024 o 9:41, Support <{ADDR}> napísal:",
    "tr": f"5 Mar 2024 tarihinde 09:41 saatinde, Support <{ADDR}> şunları yazdı:",
    "hu": f"2024. márc. 5. dátummal, 9:41 időpontban Support <{ADDR}> írta:",
    "el": f"Στις 5 Μαρ 2024, στις 09:41, ο χρήστης Support <{ADDR}> έγραψε:",
    "ro": f"Pe 5 mar. 2024, la 09:41, Support <{ADDR}> a scris:",
    "ca": f"El 5 de març 2024, a les 9:41, Support <{ADDR}> va escriure:",
    "he": f"ב-5 במרץ 2024, בשעה 9:41, \u200fSupport <{ADDR}> כתב/ה:",
    "hr": f"5. ožu 2024. u 09:41, Support <{ADDR}> je napisao/la:",
}

#: Thunderbird's reply headers ("<date>, <name> wrote:", "<name> wrote on <date>:").
THUNDERBIRD = {
    "en": "On 3/5/24 9:41 AM, Support wrote:",
    "en-wrote-on": f"Support <{ADDR}> wrote on 05/03/2024 09:41:",
    "en-wrote-on-no-address": "Support wrote on 05/03/2024 09:41:",
    "de": "Am 05.03.24 um 09:41 schrieb Support:",
    "fr": "Le 05/03/2024 à 09:41, Support a écrit :",
    "es": "El 5/3/24 a las 9:41, Support escribió:",
    "it": "Il 05/03/24 09:41, Support ha scritto:",
    "nl": "Op 05-03-2024 om 09:41 schreef Support:",
    "pl": "W dniu 5.03.2024 o 09:41, Support pisze:",
    "ru": "05.03.2024 09:41, Support пишет:",
    "cs": "Dne 05. 03. 24 v 9:41 Support napsal(a):",
    "sv": "2024-03-05 kl. 09:41, skrev Support:",
    "fi": "5.3.2024 klo 9.41 Support kirjoitti:",
    "pt": "Em 05/03/2024 09:41, Support escreveu:",
    "hu": "2024. 03. 05. 9:41 keltezéssel, Support írta:",
}

#: Yahoo and AOL (new and old layouts).
YAHOO_AOL = {
    "yahoo-en": f"On Tuesday, March 5, 2024, 09:41:22 AM GMT+1, Support <{ADDR}> wrote:",
    "yahoo-de": f"Am Dienstag, 5. März 2024, 09:41:22 MEZ hat Support <{ADDR}> Folgendes geschrieben:",
    "yahoo-fr": f"Le mardi 5 mars 2024, 09:41:22 UTC+1, Support <{ADDR}> a écrit :",
    "yahoo-es": f"El martes, 5 de marzo de 2024, 09:41:22 CET, Support <{ADDR}> escribió:",
    "yahoo-it": f"Il martedì 5 marzo 2024, 09:41:22 CET, Support <{ADDR}> ha scritto:",
    "yahoo-pt": f"Em terça-feira, 5 de março de 2024 09:41:22 BRT, Support <{ADDR}> escreveu:",
    "yahoo-wrapped": f"On Tuesday, March 5, 2024, 09:41:22 AM GMT+1, Support <\n{ADDR}> wrote:",
    "yahoo-old": (f"----- Original Message -----\nFrom: Support <{ADDR}>\nTo: Kim <kim@example.org>\n"
                  "Sent: Tuesday, March 5, 2024 9:41 AM\nSubject: Re: Order"),
    "aol-old": (f"-----Original Message-----\nFrom: Support <{ADDR}>\nTo: kim@example.org\n"
                "Sent: Tue, Mar 5, 2024 9:41 am\nSubject: Re: Order"),
}

#: Outlook's reply-header labels (From, Sent, To, Cc, Subject) per display language.
OUTLOOK_LABELS = {
    "en": ("From", "Sent", "To", "Cc", "Subject"),
    "en-mac": ("From", "Date", "To", "Cc", "Subject"),
    "de": ("Von", "Gesendet", "An", "Cc", "Betreff"),
    "de-mac": ("Von", "Datum", "An", "Cc", "Betreff"),
    "fr": ("De", "Envoyé", "À", "Cc", "Objet"),
    "es": ("De", "Enviado", "Para", "CC", "Asunto"),
    "it": ("Da", "Inviato", "A", "Cc", "Oggetto"),
    "pt": ("De", "Enviado", "Para", "Cc", "Assunto"),
    "nl": ("Van", "Verzonden", "Aan", "CC", "Onderwerp"),
    "sv": ("Från", "Skickat", "Till", "Kopia", "Ämne"),
    "da": ("Fra", "Sendt", "Til", "Cc", "Emne"),
    "no": ("Fra", "Sendt", "Til", "Kopi", "Emne"),
    "fi": ("Lähettäjä", "Lähetetty", "Vastaanottaja", "Kopio", "Aihe"),
    "pl": ("Od", "Wysłano", "Do", "DW", "Temat"),
    "cs": ("Od", "Odesláno", "Komu", "Kopie", "Předmět"),
    "sk": ("Od", "Odoslané", "Komu", "Kópia", "Predmet"),
    "ru": ("От", "Отправлено", "Кому", "Копия", "Тема"),
    "uk": ("Від", "Надіслано", "Кому", "Копія", "Тема"),
    "bg": ("От", "Изпратено", "До", "Як", "Относно"),
    "tr": ("Kimden", "Gönderildi", "Kime", "Bilgi", "Konu"),
    "hu": ("Feladó", "Elküldve", "Címzett", "Másolatot kap", "Tárgy"),
    "el": ("Από", "Στάλθηκε", "Προς", "Κοιν.", "Θέμα"),
    "ro": ("De la", "Trimis", "Către", "Cc", "Subiect"),
    "hr": ("Šalje", "Poslano", "Prima", "Kopija", "Predmet"),
    "sl": ("Od", "Poslano", "Za", "Kp", "Zadeva"),
    "lt": ("Nuo", "Išsiųsta", "Kam", "Kopija", "Tema"),
    "lv": ("No", "Nosūtīts", "Kam", "Kopija", "Tēma"),
    "et": ("Saatja", "Saadetud", "Adressaat", "Koopia", "Teema"),
    "is": ("Frá", "Sent", "Til", "Afrit", "Efni"),
    "ca": ("De", "Enviat el", "Per a", "A/c", "Tema"),
    "vi": ("Từ", "Đã gửi", "Đến", "Cc", "Chủ đề"),
    "id": ("Dari", "Dikirim", "Kepada", "Cc", "Subjek"),
    "ms": ("Daripada", "Dihantar", "Kepada", "Sk", "Subjek"),
    "th": ("จาก", "ส่ง", "ถึง", "สำเนาถึง", "เรื่อง"),
    "he": ("מאת", "נשלח", "אל", "עותק", "נושא"),
    "ar": ("من", "تم الإرسال", "إلى", "نسخة", "الموضوع"),
    "ja": ("差出人", "送信日時", "宛先", "CC", "件名"),
    "zh-CN": ("发件人", "发送时间", "收件人", "抄送", "主题"),
    "zh-TW": ("寄件者", "寄件日期", "收件者", "副本", "主旨"),
    "ko": ("보낸 사람", "보낸 날짜", "받는 사람", "참조", "제목"),
}
OUTLOOK_VALUES = (f"Support <{ADDR}>", "Tuesday, March 5, 2024 9:41 AM", "Kim <kim@example.org>",
                  "Anna <anna@example.org>", "RE: [#1234] Order")
OUTLOOK_STYLES = ("plain", "bold", "rule", "rule-bold", "no-cc", "space-before-colon")

#: "-------- Original message --------" of Android / Samsung mail, per language.
ANDROID = (
    "Original message", "Originalnachricht", "Message d'origine", "Mensaje original",
    "Messaggio originale", "Mensagem original", "Oorspronkelijk bericht", "Ursprungligt meddelande",
    "Oprindelig meddelelse", "Opprinnelig melding", "Alkuperäinen viesti", "Oryginalna wiadomość",
    "Původní zpráva", "Исходное сообщение", "Eredeti üzenet", "Orijinal mesaj", "原始邮件",
    "元のメッセージ", "원본 메시지", "Αρχικό μήνυμα", "Mesaj original", "Pôvodná správa",
    "Izvorna poruka", "Originalna poruka", "Вихідне повідомлення", "Tin nhắn gốc", "Pesan asli",
    "Mensatge original", "Bericht van onbekende taal",
)

#: Mobile and app footers: iOS Mail in its languages, Android vendors, Outlook mobile, others.
FOOTERS = (
    "Sent from my iPhone", "Von meinem iPhone gesendet", "Envoyé de mon iPhone",
    "Enviado desde mi iPhone", "Inviato da iPhone", "Enviado do meu iPhone",
    "Verstuurd vanaf mijn iPhone", "Skickat från min iPhone", "Sendt fra min iPhone",
    "Lähetetty iPhonesta", "Wysłane z iPhone'a", "Odesláno z iPhonu", "Odoslané z iPhonu",
    "Отправлено с iPhone", "Надіслано з iPhone", "iPhone'umdan gönderildi",
    "Στάλθηκε από το iPhone μου", "iPhone-ról küldve", "Trimis de pe iPhone-ul meu",
    "Poslano s mog iPhonea", "iPhoneから送信", "发自我的iPhone", "從我的 iPhone 傳送",
    "내 iPhone에서 보냄", "נשלח מה-iPhone שלי", "Dikirim dari iPhone saya",
    "Được gửi từ iPhone của tôi", "Enviat des de l’iPhone", "ส่งจาก iPhone ของฉัน",
    "Sent from my iPad", "Sent from my iPhone, please excuse typos",
    "Sent from my Galaxy", "Sent from my Samsung Galaxy smartphone.",
    "Von meinem Samsung Galaxy Smartphone gesendet.", "Envoyé de mon appareil Galaxy",
    "Sent from Yahoo Mail on Android", "Sent from Yahoo Mail for iPhone", "Sent from Mail for Windows",
    "Sent from Outlook", "Sent from AOL Mobile Mail", "Sent with Proton Mail secure email.",
    "Get BlueMail for Android", "Sent from my Huawei phone",
    "Get Outlook for iOS", "Get Outlook for Android", "Get Outlook for iOS<https://aka.ms/o0ukef>",
    "Outlook für iOS beziehen", "Obtenir Outlook pour iOS", "Obtener Outlook para Android",
    "Scarica Outlook per iOS", "Baixe o Outlook para Android", "Outlook voor iOS downloaden",
    "Hämta Outlook för iOS", "Hent Outlook til Android", "Få Outlook for iOS", "Hanki Outlook for iOS",
    "Pobierz aplikację Outlook dla systemu iOS", "Stáhněte si Outlook pro iOS",
    "Загрузите Outlook для iOS", "iOS için Outlook'u edinin", "iOS 版 Outlook を入手",
    "获取 Outlook for iOS", "iOS용 Outlook 받기",
)

#: Replies whose lines only look like history or signature: nothing may be cut.
KEEP_WHOLE = {
    "from-in-prose": ("Hi,\n\nFrom: the warehouse in Leipzig, the parcel went back.\n"
                      "To: be honest, I am tired of waiting."),
    "on-monday-i-wrote": "Hello,\n\nOn Monday I wrote to you:\nthe invoice is wrong.\nNobody answered so far.",
    "on-date-i-wrote": "Hello,\n\nOn 5 March 2024 I wrote to you:\nthe invoice is wrong.\nNobody answered so far.",
    "bulleted-list": ("Hi,\n\nWhat I tried:\n- restarted the router\n- cleared the cache\n"
                      "-- nothing helped\n- reinstalled the app\n\nAny idea?"),
    "log-with-arrows": ("The import fails:\n\n$ ./import.sh --all\n2024-03-05 09:41:22 INFO start -> db\n"
                        "2024-03-05 09:41:23 ERROR conn => refused <db@10.0.0.5>\nC:\\> ping db.example.com\n\n"
                        "Can you check the server?"),
    "dash-in-prose": ("Hi,\n\nThe new plan -- the one you sent on Monday -- is fine for us.\n"
                      "We will sign it -- probably tomorrow."),
    "only-thanks": "Thanks!",
    "route-fields": "Please change my booking.\nFrom: Berlin\nTo: Paris\nDate: 05.03.2024\n\nThe seat stays the same.",
    "form-fields": ("Here are my details:\n\nName: Kim Meyer\nOrder: 1234\nDate: 05.03.2024\n"
                    "Subject: refund\n\nPlease refund it."),
    "colleague-wrote-at": "My colleague wrote this on the ticket at 09:41:\nthe printer is offline.\n\nPlease check.",
    "underlined-heading": "Total:\n======\n42 EUR\n\nIs that right?",
    "sent-in-prose": "I have sent from my account the file twice.\nPlease confirm.",
    "finnish-sent": "Hei,\n\nLähetetty paketti on kadonnut.\nVoitteko tarkistaa?",
    "turkish-sent": "Merhaba,\n\nSiparişim iki kez gönderildi\nLütfen kontrol edin.",
    "chinese-from": "你好，\n\n从昨天开始就不能登录\n请帮忙看看",
    "outlook-in-prose": "Hi,\n\nThe link does not open in Outlook for iOS, get it fixed please.",
    "wrote-verb-in-prose": "Hi,\n\nYou wrote that the refund takes 5 days:\nit has been 10 days now.",
}


def _words(text: str) -> Counter[str]:
    return Counter(re.findall(r"\w+", text))


def _assert_reply(body: str, reply: str = REPLY) -> None:
    result = extract_reply(body)
    assert reply == result.text
    assert _words(body) == _words("\n".join((result.text, result.signature, result.quoted)))


def _with_history(header: str, quoted: bool, blank: bool = True) -> str:
    gap = "\n\n" if blank else "\n"
    return f"{REPLY}{gap}{header}{gap}{QUOTED if quoted else UNQUOTED}\n"


def _cases(table: dict[str, str]) -> list[tuple[str, bool, bool]]:
    return [(h, q, b) for h in table.values() for q, b in ((True, True), (False, True), (True, False))]


def _ids(table: dict[str, str]) -> list[str]:
    return [f"{k}-{s}" for k in table for s in ("quoted", "unquoted", "tight")]


@pytest.mark.parametrize(("header", "quoted", "blank"), _cases(GMAIL), ids=_ids(GMAIL))
def test_gmail_attribution(header: str, quoted: bool, blank: bool) -> None:
    """Gmail's attribution in each locale (and wrapped) cuts the history, quoted or not."""
    _assert_reply(_with_history(header, quoted, blank))


@pytest.mark.parametrize(("header", "quoted", "blank"), _cases(APPLE), ids=_ids(APPLE))
def test_apple_mail_attribution(header: str, quoted: bool, blank: bool) -> None:
    """Apple Mail's attribution in each locale cuts the history."""
    _assert_reply(_with_history(header, quoted, blank))


@pytest.mark.parametrize(("header", "quoted", "blank"), _cases(THUNDERBIRD), ids=_ids(THUNDERBIRD))
def test_thunderbird_attribution(header: str, quoted: bool, blank: bool) -> None:
    """Thunderbird's reply header in each locale cuts the history."""
    _assert_reply(_with_history(header, quoted, blank))


@pytest.mark.parametrize(("header", "quoted", "blank"), _cases(YAHOO_AOL), ids=_ids(YAHOO_AOL))
def test_yahoo_and_aol_headers(header: str, quoted: bool, blank: bool) -> None:
    """Yahoo and AOL reply headers cut the history."""
    _assert_reply(_with_history(header, quoted, blank))


def _outlook_block(labels: tuple[str, ...], style: str) -> str:
    rows = []
    for k, (label, value) in enumerate(zip(labels, OUTLOOK_VALUES, strict=True)):
        if style == "no-cc" and k == 3:
            continue
        if "bold" in style:
            rows.append(f"*{label}:* {value}")
        elif style == "space-before-colon":
            rows.append(f"{label} : {value}")
        else:
            rows.append(f"{label}: {value}")
    rule = "________________________________\n" if "rule" in style else ""
    return rule + "\n".join(rows)


@pytest.mark.parametrize("style", OUTLOOK_STYLES)
@pytest.mark.parametrize("lang", list(OUTLOOK_LABELS))
def test_outlook_header_block(lang: str, style: str) -> None:
    """Outlook's From/Sent/To/Cc/Subject block in each language and layout cuts the history."""
    _assert_reply(_with_history(_outlook_block(OUTLOOK_LABELS[lang], style), quoted=False))


@pytest.mark.parametrize("title", ANDROID)
def test_android_original_message(title: str) -> None:
    """Android/Samsung's framed "Original message" line goes with the header block under it."""
    header = (f"-------- {title} --------\nFrom: Support <{ADDR}>\n"
              "Date: 05/03/2024 09:41 (GMT+01:00)\nTo: kim@example.org\nSubject: Re: Order")
    _assert_reply(_with_history(header, quoted=False))


@pytest.mark.parametrize("footer", FOOTERS)
def test_client_footer_is_signature(footer: str) -> None:
    """A mobile or app footer under the reply moves to the signature."""
    result = extract_reply(f"{REPLY}\n\n{footer}\n")
    assert (REPLY, footer) == (result.text, result.signature.strip())


@pytest.mark.parametrize("footer", FOOTERS)
def test_client_footer_above_history(footer: str) -> None:
    """A footer between the reply and the quoted history is split off, the history cut."""
    body = _with_history(f"{footer}\n\n{GMAIL['en']}", quoted=True)
    result = extract_reply(body)
    assert (REPLY, footer) == (result.text, result.signature.strip())


@pytest.mark.parametrize("body", list(KEEP_WHOLE.values()), ids=list(KEEP_WHOLE))
def test_lines_that_only_look_like_history_are_kept(body: str) -> None:
    """Prose that resembles headers, quotes, rules or footers is never cut."""
    result = extract_reply(body)
    assert "" == result.quoted
    assert body == f"{result.text}\n{result.signature}".strip() if result.signature else result.text


def test_forward_with_note_is_kept() -> None:
    """A message the customer forwards on purpose stays, with the note above it."""
    body = ("See the mail from the shop below.\n\n---------- Forwarded message ---------\n"
            "From: Shop <shop@example.net>\nDate: Tue, Mar 5, 2024 at 9:41 AM\nSubject: Order\n"
            "To: <kim@example.org>\n\nYour order shipped.\n")
    assert body.strip() == extract_reply(body).text


def test_lotus_notes_german_block() -> None:
    """A Lotus Notes block (name line, date line, An/Kopie/Thema fields) cuts the history."""
    header = ("Support Team/ACME@ACME\n05.03.2024 09:41\n\nAn: Kim Meyer/ACME@ACME\nKopie:\n"
              "Thema: Re: Order")
    _assert_reply(_with_history(header, quoted=False))


def test_interleaved_answers_in_german() -> None:
    """Answers between quoted lines under a German attribution are all kept."""
    body = (f"{GMAIL['de']}\n> Welche Adresse?\n\nDie in Berlin.\n\n> Express?\n\nJa, bitte.\n\n"
            "> Viele Grüße\n")
    assert "Die in Berlin.\n\nJa, bitte." == extract_reply(body).text
