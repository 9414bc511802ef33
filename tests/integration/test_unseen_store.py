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


def test_a_check_before_the_window_ends_schedules_itself_again(world: Any) -> None:
    """Asked too early (the teammate is still replying), the check stores nothing and comes back when due."""
    gw, clock, sent = world
    key = open_ticket(gw, "A")
    reply(gw, "A", 1, T0)
    reply(gw, "A", 2, T0 + timedelta(seconds=60))
    sent.clear()
    clock.now = T0 + timedelta(seconds=180)
    assert [] == gw.unseen.check(key)
    assert [("unseen_check", (key,), 60.0)] == sent
    clock.now = T0 + timedelta(seconds=240)
    assert 1 == len(gw.unseen.check(key))
    (email,) = reply_emails(gw)
    assert email.index("Reply 2 on A.") < email.index("Reply 1 on A.")


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
