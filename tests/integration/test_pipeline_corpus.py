"""The pipeline on raw messages in the shapes real clients produce: each ends where it should, none is lost.

Messages live in ``tests/corpus/inbound``; ``{{CUSTOMER}}``, ``{{REPLY_TO}}`` and ``{{SENT_ID}}`` are
filled in with the ticket's customer, its reply address and the Message-ID of the email we sent.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dramatiq
import pytest

from gateway.app import Gateway, build_gateway
from gateway.models import EntryKind, InboundStatus, RawMessage, Ticket
from inbound.extract import extract_reply
from inbound.pipeline import Outcome, preview
from tests.helpers import CUSTOMER, open_ticket, settings_for

CORPUS = Path(__file__).parent.parent / "corpus" / "inbound"
TRUSTED_MX = "mx.acme.example.test"


@dataclass
class Desk:
    """A gateway with one open ticket, fed raw messages straight into its store and pipeline."""

    gw: Gateway
    ticket: Ticket
    reply_to: str
    sent_id: str

    def raw(self, name: str, **extra: str) -> bytes:
        data = (CORPUS / name).read_bytes()
        if name.endswith(".eml"):
            data = re.sub(rb"(?<!\r)\n", b"\r\n", data)
            data = re.sub(rb"\{\{BASE64:(.*?)\}\}", lambda m: base64.encodebytes(m.group(1)).replace(b"\n", b"\r\n"),
                          data, flags=re.S)
        values = {"CUSTOMER": CUSTOMER, "CUSTOMER_UPPER": CUSTOMER.upper(), "REPLY_TO": self.reply_to,
                  "SENT_ID": self.sent_id.strip("<>"), **extra}
        for key, value in values.items():
            data = data.replace(b"{{" + key.encode() + b"}}", value.encode())
        return data

    def deliver(self, raw: bytes, *, rcpt: tuple[str, ...] | None = None, mail_from: str = CUSTOMER) -> int:
        """Store ``raw`` as the SMTP server would (to the reply address by default)."""
        envelope = (self.reply_to,) if rcpt is None else rcpt
        return self.gw.inbound.save_many([RawMessage(mail_from, envelope, raw)], now=self.gw.clock())[0]

    def process(self, name: str, **kwargs: object) -> Outcome:
        pk = self.deliver(self.raw(name), **kwargs)  # type: ignore[arg-type]
        outcome = self.gw.pipeline.process(pk)
        assert outcome is not None
        return outcome

    def replies(self) -> list[str]:
        return [e.text for e in self.gw.tickets.thread(self.ticket.key) if e.kind is EntryKind.CUSTOMER_REPLY]


@pytest.fixture
def desk(database_url: str, tmp_path: Path, stub_broker: dramatiq.Broker) -> Iterator[Desk]:
    settings = settings_for(tmp_path, database_url=database_url, trusted_authserv_id=TRUSTED_MX)
    gw = build_gateway(settings, broker=stub_broker)
    ticket = open_ticket(gw)
    sent = gw.outbox.recent(ticket_key=ticket.key)[0]
    yield Desk(gw, ticket, gw.keyring.address_for(ticket.key, CUSTOMER), sent.message_id)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("gmail.eml", "I replaced the toner and it still prints blank pages."),
        ("outlook.eml", "The new driver fixed it, thanks."),
        ("outlook_html_only.eml", "It is printing again since this morning – thank you!"),
        ("apple_mail.eml", "Yes, the paper tray was the problem. All good now — cheers!"),
        ("mobile.eml", "Will try tonight when I'm home"),
        ("latin1.eml", "Grüße, der Drucker läuft wieder – vielen Dank für die schnelle Hilfe!"),
        ("mislabelled_utf8.eml", "Céline fixed it — merci beaucoup"),
    ],
)
def test_customer_replies_land_as_just_the_new_text(desk: Desk, name: str, expected: str) -> None:
    """Replies from Gmail, Outlook (also HTML-only), Apple Mail, a phone and non-UTF-8 clients land once, text only."""
    outcome = desk.process(name)
    assert (InboundStatus.LANDED, "token") == (outcome.status, outcome.threaded_by)
    assert [expected] == desk.replies()


def test_reply_the_rules_cut_whole_lands_with_the_unquoted_fallback(desk: Desk) -> None:
    """A reply the rules would cut whole (joined into the attribution under it) lands as its own
    unquoted text, marked ``unquoted_fallback``, instead of being held as "no reply text"."""
    outcome = desk.process("fallback_unquoted.eml")
    assert InboundStatus.LANDED == outcome.status
    assert ["På måndag tar jag med skrivaren till er"] == desk.replies()
    assert "unquoted_fallback" == preview(desk.raw("fallback_unquoted.eml"), extract_reply)["reply"]["rule"]


def test_reply_with_only_quoted_history_is_not_landed(desk: Desk) -> None:
    """A reply holding nothing but the quoted history has no text of the customer's: it never lands."""
    outcome = desk.process("only_history.eml")
    assert InboundStatus.LANDED != outcome.status
    assert "NoReplyText" in (outcome.detail or "")
    assert [] == desk.replies()


def test_bounce_at_a_reply_address_is_recorded_never_lands_and_suppresses_nobody(desk: Desk) -> None:
    """A DSN to a reply address is recorded as a bounce naming its failed recipient; nobody is suppressed."""
    outcome = desk.process("bounce.eml", mail_from="<>")
    assert InboundStatus.BOUNCE == outcome.status
    assert CUSTOMER in (outcome.detail or "")
    assert not desk.gw.outbox.is_suppressed(CUSTOMER)
    assert [] == desk.replies()


@pytest.mark.parametrize("name", ["out_of_office.eml", "out_of_office_fr.eml"])
def test_out_of_office_is_recorded_never_lands_and_is_never_answered(desk: Desk, name: str) -> None:
    """An auto-reply (Auto-Submitted, or only an out-of-office subject in French) ends as auto_reply, unanswered."""
    emails_before = len(desk.gw.outbox.recent())
    outcome = desk.process(name)
    assert InboundStatus.AUTO_REPLY == outcome.status
    assert [] == desk.replies()
    assert emails_before == len(desk.gw.outbox.recent())


def test_forged_token_in_the_headers_does_not_thread(desk: Desk) -> None:
    """Delivered over HTTP (no envelope) to an altered reply address, with no header of ours: unthreaded."""
    local, domain = desk.reply_to.split("@")
    forged = local[:-5] + ("a" if local[-5] != "a" else "b") + local[-4:] + "@" + domain
    raw = desk.raw("spoofed_sender.eml", REPLY_TO=forged).replace(b"mallory@attacker.example.test", CUSTOMER.encode())
    pk = desk.deliver(raw, rcpt=())
    outcome = desk.gw.pipeline.process(pk)
    assert outcome is not None
    assert InboundStatus.UNTHREADED == outcome.status
    assert [] == desk.replies()


def test_spoofed_sender_is_quarantined_and_lands_once_released(desk: Desk) -> None:
    """A reply whose From is not the ticket's customer is quarantined; released, it lands (sender check skipped)."""
    outcome = desk.process("spoofed_sender.eml")
    assert (InboundStatus.QUARANTINED, desk.ticket.key) == (outcome.status, outcome.ticket_key)
    assert [] == desk.replies()
    [held] = desk.gw.inbound.quarantined()
    assert "mallory@attacker.example.test" == held.from_addr
    assert "not the ticket's customer" in (held.detail or "")
    assert desk.gw.inbound.release(held.pk, now=desk.gw.clock())
    assert not desk.gw.inbound.release(held.pk, now=desk.gw.clock())  # no longer quarantined
    again = desk.gw.pipeline.process(held.pk)
    assert again is not None
    assert InboundStatus.LANDED == again.status
    assert 1 == len(desk.replies())


def test_dmarc_fail_from_the_trusted_server_is_quarantined(desk: Desk) -> None:
    """From says the customer, but the trusted MX recorded dmarc=fail: quarantined."""
    outcome = desk.process("dmarc_fail.eml")
    assert InboundStatus.QUARANTINED == outcome.status
    assert "DmarcFailed" in (outcome.detail or "")


def test_dmarc_fail_from_an_untrusted_server_is_ignored(desk: Desk) -> None:
    """An Authentication-Results header written by anyone else is not evidence: the reply lands."""
    raw = desk.raw("dmarc_fail.eml").replace(TRUSTED_MX.encode(), b"mx.attacker.example.test")
    outcome = desk.gw.pipeline.process(desk.deliver(raw))
    assert outcome is not None
    assert InboundStatus.LANDED == outcome.status


def test_same_message_twice_lands_once(desk: Desk) -> None:
    """An MTA delivering the same message twice: the second ends as duplicate, one entry on the thread."""
    first, second = desk.process("gmail.eml"), desk.process("gmail.eml")
    assert (InboundStatus.LANDED, InboundStatus.DUPLICATE) == (first.status, second.status)
    assert 1 == len(desk.replies())


def test_attachments_are_kept_with_names_types_and_sizes(desk: Desk) -> None:
    """An inline image and a PDF attachment are recorded with name, type and size; the original is kept."""
    raw = desk.raw("attachment.eml")
    pk = desk.deliver(raw)
    outcome = desk.gw.pipeline.process(pk)
    assert outcome is not None
    assert InboundStatus.LANDED == outcome.status
    stored = desk.gw.inbound.get(pk)
    assert stored is not None
    assert raw == stored.raw
    assert [
        {"filename": "page.png", "content_type": "image/png", "size": 70, "inline": True, "content_id": "page@photo"},
        {"filename": "printer-log.pdf", "content_type": "application/pdf", "size": 82, "inline": False,
         "content_id": None},
    ] == list(stored.attachments)
    assert ["Here is a photo of the page and the printer log."] == desk.replies()


def test_garbage_bytes_are_a_recorded_failure_and_kept(desk: Desk) -> None:
    """Bytes that are not an email end as failed with a specific reason; the raw bytes stay stored."""
    raw = desk.raw("garbage.bin")
    pk = desk.deliver(raw)
    outcome = desk.gw.pipeline.process(pk)
    assert outcome is not None
    assert (InboundStatus.FAILED, True) == (outcome.status, (outcome.detail or "").startswith("MalformedMessage"))
    stored = desk.gw.inbound.get(pk)
    assert stored is not None
    assert raw == stored.raw


def test_reply_to_the_from_address_threads_by_in_reply_to(desk: Desk) -> None:
    """Without a reply token (HTTP inbound, a reply to From), In-Reply-To naming our email threads it."""
    pk = desk.deliver(desk.raw("headers_only_thread.eml"), rcpt=())
    outcome = desk.gw.pipeline.process(pk)
    assert outcome is not None
    assert (InboundStatus.LANDED, "in_reply_to") == (outcome.status, outcome.threaded_by)
    assert ["Replying to the From address: the toner arrived, thanks."] == desk.replies()


def test_an_extractor_bug_lands_the_whole_text_instead_of_stalling(desk: Desk) -> None:
    """If reply extraction itself crashes, the reply still lands once, with every line kept."""

    def broken(text: str, html: str | None) -> Any:
        raise IndexError("a bug in the extractor")

    desk.gw.pipeline._extractor = broken  # the composition root takes an extractor by keyword too
    outcome = desk.process("gmail.eml")
    assert InboundStatus.LANDED == outcome.status
    (reply,) = desk.replies()
    assert reply.startswith("I replaced the toner and it still prints blank pages.")
    assert "wrote:" in reply, "nothing was cut: the quoted history is kept rather than guessed at"


@pytest.mark.parametrize(
    "from_lines",
    [
        "From: mallory@evil.example\r\nFrom: Ada Lovelace <{customer}>",
        "From: Ada Lovelace <{customer}>\r\nFrom: mallory@evil.example",
        "From: {customer}, mallory@evil.example",
        "From: {customer})<mallory@evil.example>",
        "From: Ada <{customer}> <mallory@evil.example>",
    ],
)
def test_a_from_that_does_not_name_one_author_is_quarantined(desk: Desk, from_lines: str) -> None:
    """Two From headers, or a From naming several mailboxes (however written), are not the customer:
    quarantined, never landed, whichever mailbox a mail program would have shown."""
    raw = (from_lines.format(customer=CUSTOMER) + f"\r\nTo: {desk.reply_to}\r\nSubject: Re: Printer\r\n"
           "Message-ID: <forged-from@evil.example>\r\n\r\nPlease send the invoice to my new address.\r\n").encode()
    outcome = desk.gw.pipeline.process(desk.deliver(raw))
    assert outcome is not None
    assert InboundStatus.QUARANTINED == outcome.status
    assert "exactly one" in (outcome.detail or "") or "ambiguous" in (outcome.detail or "")
    assert [] == desk.replies()


def test_a_plain_from_with_a_display_name_still_lands(desk: Desk) -> None:
    """A quoted display name with a comma is one mailbox: the customer's reply lands."""
    raw = (f'From: "Lovelace, Ada" <{CUSTOMER.upper()}>\r\nTo: {desk.reply_to}\r\nSubject: Re: Printer\r\n'
           "Message-ID: <plain-from@customer.example.test>\r\n\r\nAll good now.\r\n").encode()
    outcome = desk.gw.pipeline.process(desk.deliver(raw))
    assert outcome is not None and InboundStatus.LANDED == outcome.status
    assert ["All good now."] == desk.replies()


def test_nul_bytes_in_a_reply_are_kept_visibly_not_fatal(desk: Desk) -> None:
    """A NUL in the body and the Subject (PostgreSQL refuses NUL in text) lands, NUL shown as U+FFFD."""
    raw = (f"From: {CUSTOMER}\r\nTo: {desk.reply_to}\r\nSubject: Re: Printer\x00 again\r\n"
           "Message-ID: <nul@customer.example.test>\r\n\r\nIt works\x00 now.\r\n").encode()
    outcome = desk.gw.pipeline.process(desk.deliver(raw))
    assert outcome is not None and InboundStatus.LANDED == outcome.status
    assert ["It works\ufffd now."] == desk.replies()
    stored = desk.gw.inbound.get(outcome_pk(desk))
    assert stored is not None and "\x00" not in (stored.subject or "")


def outcome_pk(desk: Desk) -> int:
    """The newest stored message's id."""
    with desk.gw.db.read() as conn:
        return int(conn.exec_driver_sql("SELECT max(pk) FROM inbound_messages").scalar_one())


def test_a_message_whose_processing_keeps_crashing_ends_failed(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug that crashes processing is retried (by the sweeper) a few times, then the message ends
    ``failed`` with the reason, its bytes kept, instead of crashing every sweep forever."""
    import inbound.pipeline as pipeline_module
    from inbound.pipeline import PROCESS_ATTEMPTS

    def broken(raw: bytes) -> Any:
        raise RuntimeError("a parser bug")

    monkeypatch.setattr(pipeline_module, "parse_email", broken)
    pk = desk.deliver(desk.raw("gmail.eml"))
    for _ in range(PROCESS_ATTEMPTS - 1):
        assert desk.gw.pipeline.process(pk) is None
        stored = desk.gw.inbound.get(pk)
        assert stored is not None and InboundStatus.RECEIVED == stored.status
    assert desk.gw.pipeline.process(pk) is None
    stored = desk.gw.inbound.get(pk)
    assert stored is not None
    assert (InboundStatus.FAILED, f"gave up after {PROCESS_ATTEMPTS} attempts: RuntimeError: a parser bug") == (
        stored.status, stored.detail)
    assert desk.raw("gmail.eml") == stored.raw


def test_a_store_outage_while_processing_is_not_counted_against_the_message(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store going away mid-processing (a lost connection) is an outage, not a crash: however often it
    happens the message stays ``received`` with no attempt counted, and lands once the store is back."""
    from sqlalchemy.exc import OperationalError

    from inbound.pipeline import PROCESS_ATTEMPTS

    pk = desk.deliver(desk.raw("gmail.eml"))
    finish = desk.gw.inbound.finish

    def store_gone(endings: Any) -> Any:
        raise OperationalError("COMMIT", {}, ConnectionError("server closed the connection unexpectedly"))

    monkeypatch.setattr(desk.gw.inbound, "finish", store_gone)
    for _ in range(PROCESS_ATTEMPTS + 1):
        assert desk.gw.pipeline.process(pk) is None
    stored = desk.gw.inbound.get(pk)
    assert stored is not None and (InboundStatus.RECEIVED, None) == (stored.status, stored.detail)
    monkeypatch.setattr(desk.gw.inbound, "finish", finish)
    outcome = desk.gw.pipeline.process(pk)
    assert outcome is not None and InboundStatus.LANDED == outcome.status


def test_the_thread_shows_what_was_trimmed_from_a_reply(desk: Desk) -> None:
    """A landed reply's thread entry carries its sanitised HTML and the history the extractor cut
    ("show trimmed"), so an agent or the customer can see it when the trim was wrong."""
    from fastapi.testclient import TestClient

    from gateway.api import create_api
    from tests.helpers import API_KEY

    assert InboundStatus.LANDED == desk.process("gmail.eml").status
    with TestClient(create_api(desk.gw), headers={"Authorization": f"Bearer {API_KEY}"}) as client:
        entries = client.get("/v1/tickets/T-1/thread").json()["entries"]
    reply = entries[-1]
    assert "customer_reply" == reply["kind"]
    assert "I replaced the toner and it still prints blank pages." == reply["text"]
    assert reply["trimmed"].strip(), "the quoted history is kept beside the text"
    assert reply["text"] not in reply["trimmed"]
    assert "<" in reply["html"] and "toner" in reply["html"]
    assert all("trimmed" not in e for e in entries[:-1]), "only email replies carry it"
