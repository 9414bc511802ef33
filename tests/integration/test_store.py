"""The store on SQLite and on the real PostgreSQL: events apply once, emails are claimed once, replies land once."""

from __future__ import annotations

import dataclasses
import threading
from datetime import datetime, timedelta

import pytest

from gateway.models import Customer, InboundStatus, OutboxStatus, RawMessage, Ticket
from gateway.store import Database, TicketStore
from gateway.store.changes import ChangeLog
from inbound.inbox import Ending, InboundStore, Landing, ProcessedElsewhere
from inbound.webhook import WebhookDraft, WebhookStore
from outbound.event_store import apply_ticket_created
from outbound.outbox import OutboxStore, Outcome
from tests.helpers import NOW, ONE_EMAIL, created, one_draft


def test_ticket_created_records_ticket_entry_and_email(database_url: str) -> None:
    """Applying ticket.created stores the ticket, its first entry and its email, and anchors threading."""
    db = Database.from_url(database_url)
    tickets, outbox = TicketStore(db), OutboxStore(db)
    applied = apply_ticket_created(db, created(), now=NOW, response={"ok": True}, **ONE_EMAIL)
    ticket = tickets.get("T-1")
    assert ticket is not None
    assert "<T-1-first@example.test>" == ticket.root_message_id
    assert ["ticket_created"] == [e.kind.value for e in tickets.thread(ticket.key)]
    assert [OutboxStatus.QUEUED] == [e.status for e in outbox.recent()]
    assert 1 == len(applied.outbox_pks)
    assert NOW == ticket.created_at


def test_repeated_event_id_replays_the_first_answer(database_url: str) -> None:
    """The same event id applied again returns the first answer and adds nothing."""
    db = Database.from_url(database_url)
    first = apply_ticket_created(db, created(), now=NOW, response={"n": 1}, **ONE_EMAIL)
    again = apply_ticket_created(db, created(), now=NOW, response={"n": 2}, **ONE_EMAIL)
    assert {"n": 1} == again.response == first.response
    assert again.replayed
    assert () == again.outbox_pks


def test_concurrent_same_event_applies_once(database_url: str) -> None:
    """Eight threads posting the same event at once create one ticket and one email."""
    db = Database.from_url(database_url)
    outbox = OutboxStore(db)
    results = []
    barrier = threading.Barrier(8)

    def apply() -> None:
        barrier.wait()
        results.append(apply_ticket_created(db, created(), now=NOW, response={"n": 1}, **ONE_EMAIL))

    threads = [threading.Thread(target=apply) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert 8 == len(results)
    assert 1 == sum(not r.replayed for r in results)
    assert 1 == len(outbox.recent())


def test_an_email_is_claimed_by_one_sender_until_its_lease_ends(database_url: str) -> None:
    """Only one claim succeeds; after the lease runs out the email can be claimed again."""
    db = Database.from_url(database_url)
    outbox = OutboxStore(db)
    pk = apply_ticket_created(db, created(), now=NOW, response={}, **ONE_EMAIL).outbox_pks[0]
    lease = timedelta(minutes=5)

    def claim(at: datetime) -> list[int]:
        return [c.email.pk for c in outbox.claim_batch(pk, now=at, lease=lease, limit=1)]

    assert [pk] == claim(NOW)
    assert [] == claim(NOW + timedelta(minutes=1))
    assert [pk] == outbox.due(before=NOW + timedelta(minutes=6))
    assert [pk] == claim(NOW + timedelta(minutes=6))
    outbox.record([Outcome(pk=pk, status=OutboxStatus.SENT, attempted=True)], now=NOW)
    assert [] == claim(NOW + timedelta(hours=1))
    assert [] == outbox.due(before=NOW + timedelta(hours=1))


def _one_ticket(database_url: str) -> tuple[TicketStore, InboundStore, Ticket]:
    """The stores of a fresh database holding ticket T-1."""
    db = Database.from_url(database_url)
    tickets, inbound = TicketStore(db), InboundStore(db)
    apply_ticket_created(db, created(), now=NOW, response={}, **ONE_EMAIL)
    ticket = tickets.get("T-1")
    assert ticket is not None
    return tickets, inbound, ticket


def test_a_reply_delivered_twice_lands_once(database_url: str) -> None:
    """Two stored copies of one message (same Message-ID) land one customer reply."""
    tickets, inbound, ticket = _one_ticket(database_url)
    first = inbound.save_raw(mail_from="ada@example.com", rcpt_to=["r@x"], raw=b"one", now=NOW)
    second = inbound.save_raw(mail_from="ada@example.com", rcpt_to=["r@x"], raw=b"one", now=NOW)
    landed = [
        inbound.land_customer_reply(
            pk, ticket_key=ticket.key, text="Hi", dedup_key="<m@x>", threaded_by="token", now=NOW
        )
        for pk in (first, second)
    ]
    assert [True, False] == [entry is not None for entry in landed]  # the entry's pk, then None
    assert ["ticket_created", "customer_reply"] == [e.kind.value for e in tickets.thread(ticket.key)]
    second_stored = inbound.get(second)
    assert second_stored is not None
    assert "duplicate" == second_stored.status


def test_a_message_two_jobs_process_at_once_ends_as_the_first_recorded_it(database_url: str) -> None:
    """The second job's landing of a message already landed adds no entry and leaves it landed (it does not
    become duplicate); its quarantine of it changes nothing either: the result says another job ended it."""
    tickets, inbound, ticket = _one_ticket(database_url)
    pk = inbound.save_raw(mail_from="ada@example.com", rcpt_to=["r@x"], raw=b"one", now=NOW)
    landing = Landing(pk=pk, ticket_key=ticket.key, text="Hi", dedup_key="<m@x>", threaded_by="token", now=NOW)
    (first,) = inbound.finish([landing])
    assert isinstance(first, int)
    later = NOW + timedelta(seconds=1)
    again = inbound.finish([landing, Ending(pk=pk, status=InboundStatus.QUARANTINED, now=later, detail="x")])
    assert [ProcessedElsewhere, ProcessedElsewhere] == [type(r) for r in again]
    stored = inbound.get(pk)
    assert stored is not None
    assert (InboundStatus.LANDED, None) == (stored.status, stored.detail)
    assert ["ticket_created", "customer_reply"] == [e.kind.value for e in tickets.thread(ticket.key)]


def test_a_group_commit_stores_every_message_under_the_ids_it_returns(database_url: str) -> None:
    """save_many returns one id per message, in order, and each id reads back that message's envelope and bytes."""
    inbound = InboundStore(Database.from_url(database_url))
    messages = [RawMessage(f"s{i}@example.com", (f"r{i}@example.test", "x@example.test"), b"m%d" % i) for i in range(5)]
    pks = inbound.save_many(messages, now=NOW)
    stored = [inbound.get(pk) for pk in pks]
    assert [(m.mail_from, m.rcpt_to, m.raw) for m in messages] == [
        (s.mail_from, s.rcpt_to, s.raw) for s in stored if s is not None
    ]
    assert {"received"} == {s.status for s in stored if s is not None}
    assert {NOW} == {s.received_at for s in stored if s is not None}
    assert pks[-1] < inbound.save_many(messages[:1], now=NOW)[0]


def test_a_group_commit_that_fails_stores_none_of_its_messages(database_url: str) -> None:
    """When one message of a batch cannot be stored, the whole batch is rolled back and the store still works."""
    inbound = InboundStore(Database.from_url(database_url))
    bad = RawMessage("s@example.com", ("r@example.test",), None)  # type: ignore[arg-type]  # raw is NOT NULL
    with pytest.raises(Exception):  # noqa: B017 - whatever the driver raises
        inbound.save_many([RawMessage("a@example.com", ("r@example.test",), b"ok"), bad], now=NOW)
    assert [] == inbound.unprocessed(received_before=NOW + timedelta(days=1))
    pk = inbound.save_many([RawMessage("a@example.com", ("r@example.test",), b"ok")], now=NOW)[0]
    assert [pk] == inbound.unprocessed(received_before=NOW + timedelta(days=1))


def test_root_drawn_before_is_written_with_the_ticket_and_must_be_the_first_email(database_url: str) -> None:
    """A root Message-ID given up front becomes the ticket's; one that is not the first email's
    is refused and nothing of the event is stored."""
    db = Database.from_url(database_url)
    tickets = TicketStore(db)
    with pytest.raises(ValueError, match="not the root"):
        apply_ticket_created(db, created(), now=NOW, response={}, drafts=one_draft, root_message_id="<other@x>")
    assert tickets.get("T-1") is None
    apply_ticket_created(db, created(), now=NOW, response={}, **ONE_EMAIL)
    ticket = tickets.get("T-1")
    assert ticket is not None and "<T-1-first@example.test>" == ticket.root_message_id


def test_one_bad_message_never_fails_the_others_of_its_group(database_url: str) -> None:
    """Messages arriving together (the SMTP path) share a commit; one the store refuses (a 400-character
    envelope sender is too long for PostgreSQL's column) fails alone, every other one is stored."""
    import asyncio

    db = Database.from_url(database_url)
    inbound = InboundStore(db)
    good = [RawMessage(f"s{i}@example.com", ("r@example.test",), b"m%d" % i) for i in range(20)]
    bad = RawMessage("x" * 400 + "@example.com", ("r@example.test",), b"bad")

    async def deliver() -> list[object]:
        futures = [inbound.store_async(m, now=NOW) for m in [*good[:10], bad, *good[10:]]]
        return await asyncio.gather(*futures, return_exceptions=True)

    db.mail.start()  # the SMTP server's unit of work
    try:
        outcomes = asyncio.run(deliver())
    finally:
        db.mail.stop()
    stored = [o for i, o in enumerate(outcomes) if i != 10]
    assert all(isinstance(pk, int) for pk in stored), stored
    messages = [inbound.get(pk) for pk in stored if isinstance(pk, int)]
    assert [m.raw for m in good] == [m.raw for m in messages if m is not None]
    if "postgresql" in database_url:
        assert isinstance(outcomes[10], Exception)


def _two_customers(database_url: str) -> tuple[Database, TicketStore, InboundStore, Ticket, Ticket]:
    """A fresh database holding T-1 (customer c-1) and T-2 (customer c-2)."""
    db = Database.from_url(database_url)
    tickets, inbound = TicketStore(db), InboundStore(db)
    apply_ticket_created(db, created(), now=NOW, response={}, **ONE_EMAIL)
    other = dataclasses.replace(created("evt-2", "T-2"), customer=Customer(id="c-2", email="bo@example.com", name="Bo"))
    apply_ticket_created(db, other, now=NOW, response={}, drafts=one_draft, root_message_id="<T-2-first@example.test>")
    first, second = tickets.get("T-1"), tickets.get("T-2")
    assert first is not None and second is not None
    return db, tickets, inbound, first, second


def _landing(inbound: InboundStore, ticket: Ticket, n: int, *, at: datetime) -> Landing:
    pk = inbound.save_raw(mail_from=ticket.customer.email, rcpt_to=["r@x"], raw=b"m%d" % n, now=NOW)
    return Landing(pk=pk, ticket_key=ticket.key, text=f"Reply {n}", dedup_key=f"<m{n}@x>", threaded_by="token",
                   now=at, webhook=WebhookDraft(url="http://desk.test/hook", payload=f'{{"n": {n}}}'))


def test_a_batch_of_landings_records_each_reply_its_change_and_its_webhook(database_url: str) -> None:
    """Replies on two customers' tickets, landed by one call: each has its entry, its Messenger change (under
    its own customer), its ticket's activity time and its webhook call naming its entry."""
    db, tickets, inbound, one, two = _two_customers(database_url)
    at = NOW + timedelta(minutes=5)
    landings = [_landing(inbound, one, 1, at=at), _landing(inbound, two, 2, at=at), _landing(inbound, one, 3, at=at)]
    log = ChangeLog(db)
    before = {c: log.latest(c) for c in ("c-1", "c-2")}
    entry_pks = inbound.finish(landings)
    assert all(isinstance(pk, int) for pk in entry_pks)
    assert ["Reply 1", "Reply 3"] == [e.text for e in tickets.thread(one.key) if e.kind.value == "customer_reply"]
    assert ["Reply 2"] == [e.text for e in tickets.thread(two.key) if e.kind.value == "customer_reply"]
    assert [entry_pks[0], entry_pks[2]] == [c.entry_key for c in log.since("c-1", after=before["c-1"], limit=10)]
    assert [entry_pks[1]] == [c.entry_key for c in log.since("c-2", after=before["c-2"], limit=10)]
    assert {at} == {t.last_activity_at for t in (tickets.get("T-1"), tickets.get("T-2")) if t is not None}
    calls = sorted(WebhookStore(db).recent(), key=lambda c: c.pk)
    assert [(e, f'{{"n": {n}}}') for e, n in zip(entry_pks, (1, 2, 3), strict=True)] == [
        (c.entry_pk, c.payload) for c in calls]
    assert {InboundStatus.LANDED} == {s.status for s in (inbound.get(x.pk) for x in landings) if s is not None}


def test_a_repeat_in_a_batch_is_a_duplicate_and_the_others_land(database_url: str) -> None:
    _, tickets, inbound, one, two = _two_customers(database_url)
    (first,) = inbound.finish([_landing(inbound, one, 1, at=NOW)])
    assert isinstance(first, int)
    repeat = _landing(inbound, one, 1, at=NOW)
    results = inbound.finish([_landing(inbound, two, 2, at=NOW), repeat, _landing(inbound, one, 3, at=NOW)])
    assert [int, type(None), int] == [type(r) for r in results]
    stored = inbound.get(repeat.pk)
    assert stored is not None and InboundStatus.DUPLICATE == stored.status
    assert ["Reply 1", "Reply 3"] == [e.text for e in tickets.thread(one.key) if e.kind.value == "customer_reply"]
    assert ["Reply 2"] == [e.text for e in tickets.thread(two.key) if e.kind.value == "customer_reply"]
