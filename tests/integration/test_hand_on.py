"""Stored emails reach the broker only after their transaction commits: one broker message per
transaction (so a group commit's events share one), nothing from a rollback, and an email whose
hand-on failed is still sent by the sweeper."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import dramatiq
import pytest
from sqlalchemy import Connection

from gateway.app import SWEEP_GRACE, build_gateway
from gateway.broker import OUTBOUND_QUEUE
from gateway.models import OutboxStatus, Ticket
from gateway.store import Database, UnitOfWork
from outbound.event_store import apply_ticket_created
from outbound.outbox import QUEUED_EMAILS, OutboxDraft, insert_draft
from outbound.send import MemorySender
from tests.helpers import NOW, Call, as_one_group, created, drain, first_id, one_draft, settings_for


def draft(n: int) -> OutboxDraft:
    return OutboxDraft(ticket_key=None, kind="ticket_created", to="ada@example.com", subject="Printer",
                       message_id=f"<m{n}@example.test>", raw=b"Subject: x\r\n\r\nbody\r\n")


def handed_on(database_url: str) -> tuple[Database, list[list[int]]]:
    """A store whose committed emails are recorded, one list per hand-on."""
    db = Database.from_url(database_url)
    calls: list[list[int]] = []
    db.after_commit(QUEUED_EMAILS, calls.append)
    return db, calls


def test_emails_of_a_transaction_are_handed_on_together_after_it_commits(database_url: str) -> None:
    """Two emails stored in one transaction: one hand-on with both, and none before the commit."""
    db, calls = handed_on(database_url)

    def work(conn: Connection) -> list[int]:
        pks = [insert_draft(conn, draft(1), now=NOW), insert_draft(conn, draft(2), now=NOW)]
        assert [] == calls, "nothing reaches the broker before the commit"
        return pks

    pks = db.write(work)
    assert [pks] == calls


def test_a_rolled_back_transaction_hands_on_nothing(database_url: str) -> None:
    """An email whose transaction rolled back never existed; nothing is enqueued for it."""
    db, calls = handed_on(database_url)

    def failing(conn: Connection) -> None:
        insert_draft(conn, draft(3), now=NOW)
        raise RuntimeError("the event failed")

    with pytest.raises(RuntimeError):
        db.write(failing)
    pk = db.write(lambda conn: insert_draft(conn, draft(4), now=NOW))
    assert [[pk]] == calls


def test_emails_of_a_rolled_back_savepoint_are_not_handed_on(database_url: str) -> None:
    """Only what the group kept: the email of the work that failed is left out."""
    db, calls = handed_on(database_url)
    db.uow = UnitOfWork(db.engine, grouped=True, hand_ons=db.hand_ons)  # grouped on PostgreSQL too

    def call(n: int, *, fail: bool = False) -> Call:
        def work(conn: Connection, hold: Callable[[], None]) -> int:
            pk = insert_draft(conn, draft(n), now=NOW)
            hold()
            if fail:
                raise RuntimeError("one event of the group failed")
            return pk

        return lambda hold: db.write(lambda conn: work(conn, hold))

    outcomes = as_one_group(db.uow, [call(5), call(6), call(7, fail=True), call(8)])
    assert [[outcomes[0]], [outcomes[1], outcomes[3]]] == calls


def test_a_group_of_events_reaches_the_broker_as_one_message(database_url: str) -> None:
    """Concurrent ticket.created events committed as one group: their emails in one hand-on."""
    db, calls = handed_on(database_url)
    db.uow = UnitOfWork(db.engine, grouped=True, hand_ons=db.hand_ons)  # grouped on PostgreSQL too

    def call(n: int) -> Call:
        def drafts(hold: Callable[[], None]) -> Callable[[Ticket], list[OutboxDraft]]:
            return lambda ticket: (hold(), one_draft(ticket))[1]

        return lambda hold: apply_ticket_created(
            db, created(f"e-{n}", f"T-{n}"), now=NOW, response={}, drafts=drafts(hold),
            root_message_id=first_id(f"T-{n}"),
        )

    outcomes = as_one_group(db.uow, [call(n) for n in range(4)])
    pks = [o.outbox_pks[0] for o in outcomes]
    assert [[pks[0]], pks[1:]] == calls


def test_an_email_whose_hand_on_failed_is_sent_by_the_sweeper(
    database_url: str, tmp_path: Path, stub_broker: dramatiq.Broker
) -> None:
    """The broker refuses the message after the commit: the event is still applied (its answer
    stands), the email waits as queued, and the sweeper has it sent once."""
    now = [NOW]
    sender = MemorySender()
    gw = build_gateway(settings_for(tmp_path, database_url=database_url), broker=stub_broker, sender=sender,
                       clock=lambda: now[0])
    real_send = gw.jobs.send

    def broker_down(name: str, *args: Any, delay_seconds: float = 0) -> None:
        raise ConnectionError("the broker is down")

    gw.jobs.send = broker_down  # type: ignore[method-assign]
    applied = gw.events.ticket_created(created(), now=NOW)
    gw.jobs.send = real_send  # type: ignore[method-assign]
    (pk,) = applied.outbox_pks
    assert 0 == stub_broker.queues[OUTBOUND_QUEUE].qsize()
    email = gw.outbox.get(pk)
    assert email is not None and OutboxStatus.QUEUED == email.status
    now[0] = NOW + SWEEP_GRACE + timedelta(seconds=1)
    gw.sweep()
    drain(stub_broker, OUTBOUND_QUEUE)
    email = gw.outbox.get(pk)
    assert email is not None and OutboxStatus.SENT == email.status
    assert 1 == len(sender.sent)
