"""Every email is a store row before the broker sees it: a lost broker message is swept up and sent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import dramatiq
import pytest

from gateway.app import SWEEP_GRACE, build_gateway
from gateway.broker import INBOUND_QUEUE, OUTBOUND_QUEUE
from gateway.cli import main
from gateway.jobs import SWEEP_AGAIN_AFTER
from gateway.models import Customer, OutboxStatus, RawMessage, TicketCreated, TicketState
from outbound.send import MemorySender
from tests.helpers import drain, settings_for

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def created() -> TicketCreated:
    return TicketCreated(
        event_id="evt-1", occurred_at=T0, ticket_id="T-1", title="Printer prints blank pages", description="Blank.",
        state=TicketState.SUBMITTED, created_by="teammate",
        customer=Customer(id="c-1", email="ada@customer.example.test", name="Ada"),
    )


def test_email_whose_broker_message_was_lost_is_sent_by_the_sweeper(
    database_url: str, tmp_path: Path, stub_broker: dramatiq.Broker
) -> None:
    """With the broker message gone (Redis flushed), the sweeper re-enqueues the stored email and it is sent once."""
    now = [T0]
    sender = MemorySender()
    gw = build_gateway(settings_for(tmp_path, database_url=database_url), broker=stub_broker, sender=sender,
                       clock=lambda: now[0])
    applied = gw.events.ticket_created(created(), now=T0)
    stub_broker.flush_all()  # the broker lost the message
    (pk,) = applied.outbox_pks
    gw.sweep()
    assert 0 == stub_broker.queues[OUTBOUND_QUEUE].qsize(), "too young: its own broker message may still come"
    now[0] = T0 + SWEEP_GRACE + timedelta(seconds=1)
    gw.sweep()
    drain(stub_broker, OUTBOUND_QUEUE)
    email = gw.outbox.get(pk)
    assert email is not None
    assert (OutboxStatus.SENT, 1) == (email.status, email.attempts)
    assert 1 == len(sender.sent)
    gw.sweep()
    assert 0 == stub_broker.queues[OUTBOUND_QUEUE].qsize(), "a sent email is not swept again"


def test_cli_outbox_lists_status_and_attempts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], stub_broker: dramatiq.Broker
) -> None:
    """`web2chat-gateway outbox` shows each email's status and attempts, with no relay configured."""
    url = f"sqlite:///{tmp_path / 'gw.sqlite3'}"
    gw = build_gateway(settings_for(tmp_path, database_url=url), broker=stub_broker)
    gw.events.ticket_created(created(), now=T0)
    assert 0 == main(["outbox"], {"GATEWAY_DATABASE_URL": url})
    line = capsys.readouterr().out.strip()
    assert "queued" in line and " 0 " in line and "ada@customer.example.test" in line


def test_a_backlog_of_unprocessed_messages_is_swept_once_per_minute_not_every_sweep(
    database_url: str, tmp_path: Path, stub_broker: dramatiq.Broker
) -> None:
    """Messages waiting behind a backlog (their jobs still queued) get one extra job from the sweeper,
    not one per sweep; a minute later, still unprocessed (a job lost), they are enqueued once more."""
    now = [T0]
    gw = build_gateway(settings_for(tmp_path, database_url=database_url), broker=stub_broker, clock=lambda: now[0])
    pks = gw.inbound.save_many([RawMessage("a@example.com", ("r@example.test",), b"m%d" % n) for n in range(3)],
                               now=T0)
    queue = stub_broker.queues[INBOUND_QUEUE]

    def named() -> list[int]:
        """Every message pk the queued pipeline jobs name (a job names a list of them)."""
        jobs = [dramatiq.Message.decode(m) for m in list(queue.queue)]
        return sorted(pk for job in jobs for pk in job.args[0])

    assert sorted(pks) == named()  # their own job, still waiting behind the backlog
    for seconds in range(11, 60, 5):  # a sweep every 5 s for most of a minute
        now[0] = T0 + timedelta(seconds=seconds)
        gw.sweep()
    assert sorted(pks * 2) == named(), "one sweep's worth of jobs, not one per sweep"
    now[0] = T0 + timedelta(seconds=11) + SWEEP_AGAIN_AFTER
    gw.sweep()
    assert sorted(pks * 3) == named()
