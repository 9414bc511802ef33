"""Delivery through a real SMTP relay on loopback: success, 451 then success, 550 and suppression,
a relay that is down then up, TLS and login, and the sweeper for lost broker messages."""

from __future__ import annotations

import ssl
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from email import message_from_bytes

import pytest
import trustme
from sqlalchemy import event

from gateway.models import OutboxStatus
from gateway.retry import RetryPolicy, backoff_seconds
from gateway.store import Database
from outbound.deliver import RECORD_WITHIN, SEND_LEASE, Deliverer
from outbound.outbox import OutboxDraft, OutboxStore, insert_draft
from outbound.relay import RelaySender
from outbound.send import MemorySender, Sender, sender_from_url
from tests.integration.relay import ScriptedRelay, running_relay
from tests.services import free_port

Relay = tuple[ScriptedRelay, int]
T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
ADA = "ada@customer.example.test"


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class Harness:
    """An outbox on a real database and a Deliverer sending through ``sender``."""

    def __init__(self, database_url: str, sender: Sender, *, max_attempts: int = 8, batch_limit: int = 1) -> None:
        self.db = Database.from_url(database_url)
        self.engine = self.db.engine
        self.outbox = OutboxStore(self.db)
        self.clock = Clock()
        self.retries: list[tuple[int, float]] = []
        self.deliverer = Deliverer(
            outbox=self.outbox, sender=sender, return_path=lambda pk: f"bounces+{pk}@reply.example.test",
            clock=self.clock,
            retry_later=lambda pk, delay: self.retries.append((pk, delay)), retries=RetryPolicy(max_attempts),
            jitter=lambda: 0.5, batch_limit=batch_limit,
        )

    def queue(self, n: int = 1, to: str = ADA) -> int:
        raw = (f"From: support@acme.example.test\r\nTo: {to}\r\nMessage-ID: <m{n}@reply.example.test>\r\n"
               f"Subject: Ticket {n}\r\n\r\nHello {n}.\r\n").encode()
        draft = OutboxDraft(ticket_key=None, kind="ticket_created", to=to, subject=f"Ticket {n}",
                            message_id=f"<m{n}@reply.example.test>", raw=raw)
        return self.db.write(lambda conn: insert_draft(conn, draft, now=self.clock()))

    def status(self, pk: int) -> tuple[OutboxStatus, int]:
        email = self.outbox.get(pk)
        assert email is not None
        return email.status, email.attempts


@pytest.fixture
def relay() -> Iterator[tuple[ScriptedRelay, int]]:
    """A scripted relay on a free loopback port."""
    scripted, port = ScriptedRelay(), free_port()
    with running_relay(scripted, port):
        yield scripted, port


def plain_sender(port: int) -> RelaySender:
    return RelaySender(host="127.0.0.1", port=port, timeout=5)


def test_email_is_sent_once_and_marked_sent(database_url: str, relay: Relay) -> None:
    """A queued email reaches the relay with its Message-ID and shows as sent after one attempt."""
    scripted, port = relay
    h = Harness(database_url, plain_sender(port))
    pk = h.queue()
    assert OutboxStatus.SENT == h.deliverer.deliver(pk)
    assert (OutboxStatus.SENT, 1) == h.status(pk)
    assert None is h.deliverer.deliver(pk), "a repeated job sends nothing"
    assert ["<m1@reply.example.test>"] == [message_from_bytes(r)["Message-ID"] for r in scripted.received]


def test_lines_starting_with_a_dot_arrive_unchanged(database_url: str, relay: Relay) -> None:
    """Dot-stuffing is undone by the relay: a body with ".", ".." and ".line" lines arrives byte for byte."""
    scripted, port = relay
    h = Harness(database_url, plain_sender(port))
    raw = (b"From: support@acme.example.test\r\nTo: ada@customer.example.test\r\n"
           b"Message-ID: <dots@reply.example.test>\r\nSubject: Dots\r\n\r\n.\r\n..\r\n.hidden line\r\nlast line")
    draft = OutboxDraft(ticket_key=None, kind="ticket_created", to=ADA, subject="Dots",
                        message_id="<dots@reply.example.test>", raw=raw)
    pk = h.db.write(lambda conn: insert_draft(conn, draft, now=h.clock()))
    assert OutboxStatus.SENT == h.deliverer.deliver(pk)
    assert [raw + b"\r\n"] == scripted.received


def test_451_is_retried_later_with_the_same_message_id(database_url: str, relay: Relay) -> None:
    """A 451 answer makes the email wait out its backoff, then it is sent, once, with the same Message-ID."""
    scripted, port = relay
    scripted.rcpt_answers.append("451 4.3.0 Try again later")
    h = Harness(database_url, plain_sender(port))
    pk = h.queue()
    assert OutboxStatus.RETRYING == h.deliverer.deliver(pk)
    delay = backoff_seconds(1, jitter=0.5)
    assert [(pk, delay)] == h.retries
    assert (OutboxStatus.RETRYING, 1) == h.status(pk)
    assert "451 4.3.0 Try again later" == (h.outbox.get(pk) or pytest.fail()).last_error
    h.clock.advance(delay - 1)
    assert None is h.deliverer.deliver(pk), "not due yet"
    h.clock.advance(1)
    assert OutboxStatus.SENT == h.deliverer.deliver(pk)
    assert (OutboxStatus.SENT, 2) == h.status(pk)
    assert ["<m1@reply.example.test>"] == [message_from_bytes(r)["Message-ID"] for r in scripted.received]


def test_temporary_failures_give_up_after_the_limit(database_url: str, relay: Relay) -> None:
    """An email refused with 4xx at every attempt is marked failed after the last one, with growing waits."""
    scripted, port = relay
    scripted.data_answers.extend(["452 4.2.2 Mailbox full"] * 3)
    h = Harness(database_url, plain_sender(port), max_attempts=3)
    pk = h.queue()
    statuses = []
    for _ in range(3):
        statuses.append(h.deliverer.deliver(pk))
        h.clock.advance(3600)
    assert [OutboxStatus.RETRYING, OutboxStatus.RETRYING, OutboxStatus.FAILED] == statuses
    assert (OutboxStatus.FAILED, 3) == h.status(pk)
    assert h.retries[0][1] < h.retries[1][1]
    assert [] == scripted.received


def test_550_fails_at_once_and_suppresses_the_address(database_url: str, relay: Relay) -> None:
    """A 550 5.1.1 fails the email without retry; later emails to that address are recorded as suppressed."""
    scripted, port = relay
    scripted.rcpt_answers.append("550 5.1.1 No such user here")
    h = Harness(database_url, plain_sender(port))
    first, second, other = h.queue(1), h.queue(2), h.queue(3, to="bob@customer.example.test")
    assert OutboxStatus.FAILED == h.deliverer.deliver(first)
    assert [] == h.retries
    assert h.outbox.is_suppressed(ADA.upper())
    assert OutboxStatus.SUPPRESSED == h.deliverer.deliver(second)
    assert (OutboxStatus.SUPPRESSED, 0) == h.status(second)
    same_in_capitals = h.queue(4, to="Ada@customer.example.test")
    assert OutboxStatus.SUPPRESSED == h.deliverer.deliver(same_in_capitals), "the local part's case does not matter"
    assert OutboxStatus.SENT == h.deliverer.deliver(other)
    assert ["<m3@reply.example.test>"] == [message_from_bytes(r)["Message-ID"] for r in scripted.received]


def test_queued_emails_ride_along_in_one_batch(database_url: str, relay: Relay) -> None:
    """One job sends every queued email on its connection; a 5.1.1 in the batch suppresses the rest to that address."""
    scripted, port = relay
    scripted.rcpt_answers.append("550 5.1.1 No such user here")
    h = Harness(database_url, plain_sender(port), batch_limit=10)
    first, second, other = h.queue(1), h.queue(2), h.queue(3, to="bob@customer.example.test")
    assert OutboxStatus.FAILED == h.deliverer.deliver(first)
    assert [(OutboxStatus.FAILED, 1), (OutboxStatus.SUPPRESSED, 0), (OutboxStatus.SENT, 1)] == [
        h.status(pk) for pk in (first, second, other)
    ]
    assert None is h.deliverer.deliver(second), "its own job finds nothing left to do"
    assert ["<m3@reply.example.test>"] == [message_from_bytes(r)["Message-ID"] for r in scripted.received]


def test_a_batch_takes_its_own_email_then_the_oldest_queued(database_url: str, relay: Relay) -> None:
    """Five queued, batches of three: the job of the newest sends it first, then the two oldest;
    the rest wait for their own jobs."""
    scripted, port = relay
    h = Harness(database_url, plain_sender(port), batch_limit=3)
    pks = [h.queue(n) for n in range(1, 6)]
    assert OutboxStatus.SENT == h.deliverer.deliver(pks[4])
    assert ["<m5@reply.example.test>", "<m1@reply.example.test>", "<m2@reply.example.test>"] == [
        message_from_bytes(r)["Message-ID"] for r in scripted.received
    ]
    assert [OutboxStatus.QUEUED, OutboxStatus.QUEUED] == [h.status(pk)[0] for pk in pks[2:4]]


def test_jobs_of_emails_finished_in_a_batch_end_without_a_transaction(database_url: str, relay: Relay) -> None:
    """After one job sent a batch, the other emails' own jobs touch no database; a retrying one is claimed again."""
    scripted, port = relay
    h = Harness(database_url, plain_sender(port), batch_limit=10)
    first, second, third = h.queue(1), h.queue(2), h.queue(3)
    scripted.rcpt_answers.extend(["250 OK", "250 OK", "451 4.3.0 Try again later"])
    assert OutboxStatus.SENT == h.deliverer.deliver(first)
    transactions: list[int] = []
    event.listen(h.engine, "begin", lambda conn: transactions.append(1))
    assert None is h.deliverer.deliver(second)
    assert [] == transactions
    h.clock.advance(3600)
    assert OutboxStatus.SENT == h.deliverer.deliver(third), "a retrying email is not forgotten"
    assert [(OutboxStatus.SENT, 1), (OutboxStatus.SENT, 1), (OutboxStatus.SENT, 2)] == [
        h.status(pk) for pk in (first, second, third)
    ]


def test_job_of_an_email_another_thread_is_sending_ends_without_a_transaction(database_url: str) -> None:
    """While a batch is on its way out, the jobs of its other emails (run by other worker threads)
    neither claim nor send anything: the batch records them."""
    harness: list[Harness] = []
    seen_meanwhile: list[tuple[OutboxStatus | None, int]] = []

    class SlowSender(MemorySender):
        def send(self, *, mail_from: str, to: Sequence[str], raw: bytes) -> str | None:
            if not self.sent:  # another worker thread takes the second email's job now
                h = harness[0]
                transactions: list[int] = []
                event.listen(h.engine, "begin", lambda conn: transactions.append(1))
                seen_meanwhile.append((h.deliverer.deliver(second), len(transactions)))
            return super().send(mail_from=mail_from, to=to, raw=raw)

    sender = SlowSender()
    harness.append(Harness(database_url, sender, batch_limit=10))
    h = harness[0]
    first, second = h.queue(1), h.queue(2)
    assert OutboxStatus.SENT == h.deliverer.deliver(first)
    assert [(None, 0)] == seen_meanwhile
    assert 2 == len(sender.sent), "each email once"
    assert [(OutboxStatus.SENT, 1), (OutboxStatus.SENT, 1)] == [h.status(pk) for pk in (first, second)]


def test_other_5xx_fails_without_suppressing(database_url: str, relay: Relay) -> None:
    """A 554 5.7.1 (policy) fails the email but does not suppress the address."""
    scripted, port = relay
    scripted.data_answers.append("554 5.7.1 Message rejected as spam")
    h = Harness(database_url, plain_sender(port))
    assert OutboxStatus.FAILED == h.deliverer.deliver(h.queue(1))
    assert not h.outbox.is_suppressed(ADA)
    assert OutboxStatus.SENT == h.deliverer.deliver(h.queue(2))


def test_relay_down_then_up(database_url: str) -> None:
    """While the relay is down the email waits (retrying); once it is up the email is sent."""
    port = free_port()
    h = Harness(database_url, plain_sender(port))
    pk = h.queue()
    assert OutboxStatus.RETRYING == h.deliverer.deliver(pk)
    assert "unreachable" in ((h.outbox.get(pk) or pytest.fail()).last_error or "")
    scripted = ScriptedRelay()
    with running_relay(scripted, port):
        h.clock.advance(3600)
        assert OutboxStatus.SENT == h.deliverer.deliver(pk)
    assert 1 == len(scripted.received)


def test_connection_is_reused_and_replaced_when_the_relay_drops_it(database_url: str) -> None:
    """Emails share one connection; one the relay closed while idle is replaced without failing an email."""
    port = free_port()
    scripted = ScriptedRelay()
    sender = plain_sender(port)
    h = Harness(database_url, sender)
    with running_relay(scripted, port):
        assert OutboxStatus.SENT == h.deliverer.deliver(h.queue(1))
        assert OutboxStatus.SENT == h.deliverer.deliver(h.queue(2))
    with running_relay(scripted, port):  # a restarted relay: the kept connection is dead
        assert OutboxStatus.SENT == h.deliverer.deliver(h.queue(3))
    sender.close()
    assert 3 == len(scripted.received)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def _contexts(ca: trustme.CA) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    return server, client


def test_smtps_url_sends_over_implicit_tls(database_url: str, ca: trustme.CA) -> None:
    """smtps:// talks TLS from the first byte and checks the relay's certificate."""
    server, client = _contexts(ca)
    port, scripted = free_port(), ScriptedRelay()
    sender = sender_from_url(f"smtps://127.0.0.1:{port}", tls_context=client)
    with running_relay(scripted, port, implicit_tls=server):
        h = Harness(database_url, sender)
        assert OutboxStatus.SENT == h.deliverer.deliver(h.queue())
        sender.close()  # type: ignore[attr-defined]
    assert 1 == len(scripted.received)


def test_smtp_url_with_login_uses_starttls_and_authenticates(database_url: str, ca: trustme.CA) -> None:
    """smtp://user:pass@ upgrades with STARTTLS before logging in; a wrong password is a temporary failure."""
    server, client = _contexts(ca)
    port, scripted = free_port(), ScriptedRelay()
    right = sender_from_url(f"smtp://gateway:s3cret%20pass@127.0.0.1:{port}", tls_context=client)
    with running_relay(scripted, port, starttls=server, password="s3cret pass"):
        h = Harness(database_url, right)
        assert OutboxStatus.SENT == h.deliverer.deliver(h.queue(1))
        right.close()  # type: ignore[attr-defined]
        wrong = Harness(database_url, sender_from_url(f"smtp://gateway:nope@127.0.0.1:{port}", tls_context=client))
        assert OutboxStatus.RETRYING == wrong.deliverer.deliver(wrong.queue(2))
    assert ("gateway", True) == scripted.logins[0]
    assert {("gateway", False)} == set(scripted.logins[1:])
    assert 1 == len(scripted.received)


def test_login_is_never_sent_to_a_relay_without_starttls(database_url: str, relay: Relay) -> None:
    """With a user name, a relay that does not offer STARTTLS gets no password: the email waits."""
    _, port = relay
    h = Harness(database_url, sender_from_url(f"smtp://gateway:secret@127.0.0.1:{port}"))
    pk = h.queue()
    assert OutboxStatus.RETRYING == h.deliverer.deliver(pk)
    assert "STARTTLS" in ((h.outbox.get(pk) or pytest.fail()).last_error or "")


def test_email_held_by_a_dead_worker_is_sent_after_its_lease(database_url: str, relay: Relay) -> None:
    """An email claimed by a worker that died is taken over once the lease runs out, and sent once."""
    scripted, port = relay
    h = Harness(database_url, plain_sender(port))
    pk = h.queue()
    assert [pk] == [c.email.pk for c in h.outbox.claim_batch(pk, now=h.clock(), lease=SEND_LEASE, limit=1)]
    assert None is h.deliverer.deliver(pk)
    assert pk not in h.outbox.due(before=h.clock())
    h.clock.advance(SEND_LEASE.total_seconds())
    assert [pk] == h.outbox.due(before=h.clock())
    assert OutboxStatus.SENT == h.deliverer.deliver(pk)
    assert 1 == len(scripted.received)


def test_a_slow_batch_renews_the_lease_of_the_emails_it_has_not_sent(database_url: str) -> None:
    """A batch whose sends outlast its lease holds all its emails again (one UPDATE at half the lease):
    none is due for another worker while the batch is still being sent and recorded."""
    holder: list[Harness] = []
    due_while_sending: list[list[int]] = []

    class SlowSender(MemorySender):
        def send(self, *, mail_from: str, to: Sequence[str], raw: bytes) -> str | None:
            h = holder[0]
            h.clock.advance(SEND_LEASE.total_seconds() * 0.4)  # each send takes 40% of the lease
            due_while_sending.append(h.outbox.due(before=h.clock()))
            return super().send(mail_from=mail_from, to=to, raw=raw)

    sender = SlowSender()
    h = Harness(database_url, sender, batch_limit=5)
    holder.append(h)
    pks = [h.queue(n) for n in range(1, 6)]
    assert OutboxStatus.SENT == h.deliverer.deliver(pks[0])
    assert 5 == len(sender.sent), "each email sent once"
    # Without renewal the whole batch would be due again from the 3rd send on (1.2 leases after the claim).
    assert [[]] * 5 == due_while_sending
    assert [(OutboxStatus.SENT, 1)] * 5 == [h.status(pk) for pk in pks]


class WorkerKilled(BaseException):
    """What a killed worker process leaves: nothing after it runs (not an Exception: nothing catches it)."""


@pytest.mark.parametrize("send_seconds", [RECORD_WITHIN.total_seconds() * 1.2, 0.001])
def test_a_worker_killed_mid_batch_has_only_its_last_stretch_sent_again(database_url: str, send_seconds: float) -> None:
    """Outcomes are recorded as they come: with a relay slower than RECORD_WITHIN each email is recorded once
    sent, so a worker that dies sending the 4th of 5 leaves 3 sent and only the 4th and 5th are sent after
    the lease; with a fast relay the stretch is recorded together and all 5 go again (within RECORD_WITHIN)."""
    holder: list[Harness] = []

    class DyingSender(MemorySender):
        def send(self, *, mail_from: str, to: Sequence[str], raw: bytes) -> str | None:
            holder[0].clock.advance(send_seconds)
            if len(self.sent) == 3 and not holder[1:]:
                raise WorkerKilled
            return super().send(mail_from=mail_from, to=to, raw=raw)

    sender = DyingSender()
    h = Harness(database_url, sender, batch_limit=5)
    holder.append(h)
    pks = [h.queue(n) for n in range(1, 6)]
    with pytest.raises(WorkerKilled):
        h.deliverer.deliver(pks[0])
    recorded = 3 if send_seconds >= RECORD_WITHIN.total_seconds() else 0
    assert [OutboxStatus.SENT] * recorded + [OutboxStatus.SENDING] * (5 - recorded) == [h.status(pk)[0] for pk in pks]
    holder.append(h)  # the next worker's sends succeed
    h.clock.advance(SEND_LEASE.total_seconds())
    next_worker = Deliverer(
        outbox=h.outbox, sender=sender, return_path=lambda pk: f"bounces+{pk}@reply.example.test", clock=h.clock,
        retry_later=lambda pk, delay: None, batch_limit=5,
    )
    for pk in h.outbox.due(before=h.clock()):
        next_worker.deliver(pk)
    assert [OutboxStatus.SENT] * 5 == [h.status(pk)[0] for pk in pks]
    # The dead worker had sent the first three; those not recorded went out again.
    assert 5 + (3 - recorded) == len(sender.sent)


def test_a_renewal_holds_the_emails_sent_but_not_recorded_yet(database_url: str) -> None:
    """Email 2 is sent quickly (its outcome waits for the stretch), then half the lease has passed and email 3
    stalls for 40 s: email 2 is held too meanwhile, so no other worker sends it again."""
    holder: list[Harness] = []
    due_during_stall: list[list[int]] = []
    lease = SEND_LEASE.total_seconds()
    steps = iter([lease / 2 - 0.01, 0.02, 40.0, 0.0, 0.0])

    class StallingSender(MemorySender):
        def send(self, *, mail_from: str, to: Sequence[str], raw: bytes) -> str | None:
            h = holder[0]
            h.clock.advance(next(steps))
            if len(self.sent) == 2:
                due_during_stall.append(h.outbox.due(before=h.clock()))
            return super().send(mail_from=mail_from, to=to, raw=raw)

    h = Harness(database_url, StallingSender(), batch_limit=3)
    holder.append(h)
    pks = [h.queue(n) for n in range(1, 4)]
    assert OutboxStatus.SENT == h.deliverer.deliver(pks[0])
    assert [[]] == due_during_stall
    assert [(OutboxStatus.SENT, 1)] * 3 == [h.status(pk) for pk in pks]


def test_concurrent_claims_take_different_emails_without_waiting(database_url: str) -> None:
    """PostgreSQL: while one worker's claim holds its emails, another's takes the next ones at once (SKIP
    LOCKED) instead of waiting for them, or deadlocking over them (they did, 12-127 times a bench run)."""
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite writers take turns; there is nothing to skip")
    from outbound.outbox import _CLAIM_PG

    h = Harness(database_url, MemorySender())
    pks = [h.queue(n) for n in range(1, 7)]
    now = h.clock()
    params = {"b_now": now, "others": 2, "lease_until": now + SEND_LEASE, "b_updated_at": now}
    with h.engine.connect() as first, h.engine.connect() as second:
        first.begin()
        taken = {r.pk for r in first.execute(_CLAIM_PG.statement, {**params, "b_pk": pks[0]})}
        second.begin()
        second.exec_driver_sql("SET LOCAL lock_timeout = '2s'")  # a claim that waited would fail here
        also = {r.pk for r in second.execute(_CLAIM_PG.statement, {**params, "b_pk": pks[1]})}
        first.commit()
        second.commit()
    assert {pks[0], pks[1], pks[2]} == taken  # its own, then the oldest queued
    assert {pks[3], pks[4]} == also  # its own was held by the first: the next ones instead
