"""The unseen check against the store (SQLite and PostgreSQL), with an injected clock and no broker timing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from dramatiq.brokers.stub import StubBroker

from gateway.api.schemas import TicketCreatedIn, TicketReplyIn
from gateway.app import Gateway, build_gateway
from outbound.unseen_check import UnseenChecker, UnseenStore, as_teammate_replies
from tests.helpers import settings_for

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def world(database_url: str, tmp_path: Path) -> tuple[Gateway, Clock, list[tuple[str, tuple[Any, ...], float]]]:
    """A gateway on the test database whose broker sends are recorded instead of run."""
    clock = Clock()
    gw = build_gateway(
        settings_for(tmp_path, database_url=database_url, unseen_delay_seconds=180, unseen_max_wait_seconds=600),
        clock=clock,
        broker=StubBroker(),
    )
    sent: list[tuple[str, tuple[Any, ...], float]] = []
    gw.jobs.send = lambda name, *args, delay_seconds=0: sent.append((name, args, delay_seconds))  # type: ignore[method-assign]
    return gw, clock, sent


def open_ticket(gw: Gateway, ticket_id: str) -> int:
    event = {
        "type": "ticket.created", "id": f"c-{ticket_id}", "occurred_at": T0.isoformat(),
        "ticket": {"id": ticket_id, "title": "Help", "description": "Please.", "created_by": "customer"},
        "customer": {"id": f"cust-{ticket_id}", "email": f"{ticket_id.lower()}@example.com", "name": "C"},
    }
    gw.events.ticket_created(TicketCreatedIn.model_validate(event).record(), now=T0)
    ticket = gw.tickets.get(ticket_id)
    assert ticket is not None
    return ticket.key


def reply(gw: Gateway, ticket_id: str, n: int, at: datetime) -> None:
    event = {
        "type": "ticket.reply", "id": f"r-{ticket_id}-{n}", "occurred_at": at.isoformat(), "ticket_id": ticket_id,
        "reply": {"id": f"{ticket_id}-reply-{n}", "author": {"name": "Sam"}, "text": f"Reply {n} on {ticket_id}."},
    }
    gw.events.ticket_reply(TicketReplyIn.model_validate(event).record(), now=at)


def reply_emails(gw: Gateway) -> list[str]:
    return sorted(e.raw.decode() for e in gw.outbox.recent() if e.kind == "teammate_reply")


def test_a_check_takes_other_overdue_tickets_along(world: Any) -> None:
    """One check stores the emails of every ticket whose replies are due, each ticket once."""
    gw, clock, _ = world
    keys = [open_ticket(gw, t) for t in ("A", "B", "C")]
    for t in ("A", "B", "C"):
        reply(gw, t, 1, T0)
    clock.now = T0 + timedelta(seconds=180)
    assert 3 == len(gw.unseen.check(keys[0]))
    assert [] == gw.unseen.check(keys[1]), "its email was already stored by the first check"
    emails = reply_emails(gw)
    assert 3 == len(emails)
    assert all(sum(f"Reply 1 on {t}." in e for e in emails) == 1 for t in ("A", "B", "C"))


def test_replies_seen_in_time_take_no_place_in_a_checks_batch(world: Any) -> None:
    """Replies the customer saw stay unclaimed (never emailed); a check taking one other ticket along takes the
    ticket still waiting, not the older ones seen in time, whatever their number."""
    gw, clock, _ = world
    for t in ("S1", "S2", "S3"):
        open_ticket(gw, t)
        reply(gw, t, 1, T0)
        pill = gw.messenger.pill(t)
        assert pill is not None
        gw.messenger.mark_seen(pill, up_to=None, at=T0 + timedelta(seconds=10), now=T0 + timedelta(seconds=10))
    asked = open_ticket(gw, "A")
    open_ticket(gw, "W")
    reply(gw, "W", 1, T0 + timedelta(seconds=30))
    clock.now = T0 + timedelta(seconds=300)
    one_along = UnseenChecker(
        store=UnseenStore(gw.db), schedule=lambda key, delay: None, clock=clock, delay=timedelta(seconds=180),
        max_wait=timedelta(seconds=600), batch=1,
        draft_email=lambda ticket, rows, so_far, now: gw.events.reply_email(
            ticket, as_teammate_replies(rows), now=now, history=so_far),
    )
    assert 1 == len(one_along.check(asked))
    (email,) = reply_emails(gw)
    assert "Reply 1 on W." in email


def test_a_check_before_the_window_ends_schedules_itself_again(
    world: Any, database_url: str, tmp_path: Path
) -> None:
    """Asked too early (the teammate is still replying), the check stores nothing and comes back when due: a
    worker that did not schedule the later reply sends its own message for then."""
    gw, clock, sent = world
    key = open_ticket(gw, "A")
    sent.clear()
    reply(gw, "A", 1, T0)
    reply(gw, "A", 2, T0 + timedelta(seconds=60))
    assert [("unseen_check", ([key],), approx(180.02)), ("unseen_check", ([key],), approx(240.02))] == checks(sent)
    sent.clear()
    clock.now = T0 + timedelta(seconds=180)
    assert [] == gw.unseen.check(key)
    assert [] == checks(sent), "the slot at 240 s has its message already (sent by this process with reply 2)"
    worker = build_gateway(settings_for(tmp_path, database_url=database_url, unseen_delay_seconds=180,
                                        unseen_max_wait_seconds=600), clock=clock, broker=StubBroker())
    worker.jobs.send = lambda name, *args, delay_seconds=0: sent.append((name, args, delay_seconds))  # type: ignore[method-assign]
    assert [] == worker.unseen.check([key])
    assert [("unseen_check", ([key],), approx(60.02))] == checks(sent)
    clock.now = T0 + timedelta(seconds=240)
    assert 1 == len(gw.unseen.check(key))
    (email,) = reply_emails(gw)
    assert email.index("Reply 2 on A.") < email.index("Reply 1 on A.")


def approx(seconds: float) -> Any:
    """A delay as the scheduler computes it (the slot's end and its margin, in floating point)."""
    return pytest.approx(seconds, abs=1e-4)


def checks(sent: list[tuple[str, tuple[Any, ...], float]]) -> list[tuple[str, tuple[Any, ...], float]]:
    return [s for s in sent if s[0] == "unseen_check"]


def checker(gw: Gateway, clock: Clock, *, batch: int = 100) -> UnseenChecker:
    """Another process's checker on the same store and broker (it has scheduled nothing yet)."""
    return UnseenChecker(
        store=UnseenStore(gw.db), schedule=gw.jobs.check_unseen, clock=clock, delay=timedelta(seconds=180),
        max_wait=timedelta(seconds=600), batch=batch,
        draft_email=lambda ticket, rows, so_far, now: gw.events.reply_email(
            ticket, as_teammate_replies(rows), now=now, history=so_far),
    )


def test_checks_due_in_the_same_slot_share_one_message(world: Any) -> None:
    """Replies falling due within the same tenth of a second are one delayed message (the tickets the first
    scheduling knew); the slot's check emails every ticket due by then, those scheduled later included."""
    gw, clock, sent = world
    keys = [open_ticket(gw, t) for t in ("A", "B", "C", "D")]
    sent.clear()
    at = T0 + timedelta(seconds=10, milliseconds=910)
    # A and B committed together (one hand-on), then each reply's own hand-on.
    gw.unseen.schedule_due([(keys[0], at + timedelta(seconds=180)),
                            (keys[1], at + timedelta(seconds=180, milliseconds=50))])
    for t, ms in (("A", 0), ("B", 50), ("C", 60), ("D", 500)):
        reply(gw, t, 1, at + timedelta(milliseconds=ms))
    slot_at = 191.0  # the end of the slot A, B and C fall due in (190.91 to 190.97 s)
    assert [("unseen_check", (keys[:2],), pytest.approx(slot_at + 0.02)),
            ("unseen_check", ([keys[3]],), pytest.approx(191.52))] == checks(sent)
    clock.now = T0 + timedelta(seconds=slot_at)
    assert 3 == len(gw.unseen.check(keys[:2]))
    emails = reply_emails(gw)
    assert all(sum(f"Reply 1 on {t}." in e for e in emails) == 1 for t in ("A", "B", "C")), emails


def test_a_slot_the_broker_refused_is_sent_by_the_next_scheduling(world: Any) -> None:
    gw, _, sent = world
    key = open_ticket(gw, "A")
    sent.clear()
    down = checker(gw, Clock())
    down._schedule = lambda keys, delay: (_ for _ in ()).throw(ConnectionError("broker down"))
    due = T0 + timedelta(seconds=180)
    with pytest.raises(ConnectionError):
        down.schedule_due([(key, due)])
    down._schedule = gw.jobs.check_unseen
    down.schedule_due([(key, due)])
    assert [("unseen_check", ([key],), approx(180.02))] == sent


def test_a_backlog_drains_in_one_job(world: Any) -> None:
    """More tickets due than one transaction takes along: the job runs transactions until none is left."""
    gw, clock, _ = world
    keys = [open_ticket(gw, t) for t in ("A", "B", "C", "D", "E")]
    for t in ("A", "B", "C", "D", "E"):
        reply(gw, t, 1, T0)
    clock.now = T0 + timedelta(seconds=181)
    assert 5 == len(checker(gw, clock, batch=2).check([keys[0]]))
    assert 5 == len(reply_emails(gw))


def test_a_ticket_still_sliding_is_not_taken_along_before_its_email_is_due(world: Any) -> None:
    """Once a check found a ticket's burst not due yet, the checks of other tickets leave it alone until then."""
    gw, clock, _ = world
    sliding = open_ticket(gw, "A")
    other = open_ticket(gw, "B")
    reply(gw, "A", 1, T0)
    reply(gw, "A", 2, T0 + timedelta(seconds=60))
    clock.now = T0 + timedelta(seconds=180)
    assert [] == gw.unseen.check(sliding)  # due at 240 s
    store = UnseenStore(gw.db)

    def along(at: datetime) -> list[int]:
        decided = store.check([other], now=at, batch=10, decide=lambda rows: pytest.fail("nothing to decide"),
                              draft=lambda *a: pytest.fail("nothing to draft"))
        return [o.ticket_key for o in decided.outcomes]

    assert [] == along(T0 + timedelta(seconds=200))
    clock.now = T0 + timedelta(seconds=240)
    assert 1 == len(gw.unseen.check(other)), "due now: a check of another ticket takes it along"


def test_sweeper_finds_a_check_whose_message_was_lost(world: Any) -> None:
    """A due reply whose delayed message never arrived is found by the sweeper's query."""
    gw, clock, _ = world
    key = open_ticket(gw, "A")
    reply(gw, "A", 1, T0)
    clock.now = T0 + timedelta(seconds=170)
    assert set() == gw.unseen.overdue_tickets(grace=timedelta(seconds=10))
    clock.now = T0 + timedelta(seconds=200)
    assert {key} == gw.unseen.overdue_tickets(grace=timedelta(seconds=10))


def test_the_due_query_reads_the_partial_index(tmp_path: Path) -> None:
    """The take-along query spells the partial index's condition: SQLite plans it on ix_entries_unseen_due (a
    drift between tables.UNSEEN_WAITING, migration 0009 and the query would fall back to a scan)."""
    from sqlalchemy import event

    from gateway.store import make_engine, migrate
    from outbound.unseen_check import _DUE

    engine = make_engine(f"sqlite:///{tmp_path / 'plan.sqlite3'}")
    migrate(engine)

    def explain(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> Any:
        return "EXPLAIN QUERY PLAN " + statement, parameters

    event.listen(engine, "before_cursor_execute", explain, retval=True)
    with engine.connect() as conn:
        plan = " ".join(str(row[-1]) for row in conn.execute(_DUE, {"now": T0, "rows": 10}))
    assert "USING INDEX ix_entries_unseen_due" in plan, plan


def test_a_check_a_little_early_sends_its_own_message_for_the_slot(world: Any) -> None:
    """The slot's message ran a millisecond before the reply fell due (the broker counts whole milliseconds): the
    check that finds it not due yet schedules it again, though its process already sent that slot's message."""
    gw, clock, sent = world
    key = open_ticket(gw, "A")
    sent.clear()
    reply(gw, "A", 1, T0)
    assert [("unseen_check", ([key],), approx(180.02))] == checks(sent)
    sent.clear()
    clock.now = T0 + timedelta(seconds=179.999)
    assert [] == gw.unseen.check([key])
    assert [("unseen_check", ([key],), approx(0.021))] == checks(sent)
