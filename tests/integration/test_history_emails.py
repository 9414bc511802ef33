"""The conversation so far, read from the store inside the event's transaction and the unseen check's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest
from dramatiq.brokers.stub import StubBroker
from sqlalchemy import insert

from gateway.api.schemas import TicketCreatedIn, TicketReplyIn, TicketStateChangedIn
from gateway.app import Gateway, build_gateway
from gateway.store.tables import entries
from tests.helpers import settings_for

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
HEADING = "The conversation so far (newest first)"


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def world(database_url: str, tmp_path: Path, **settings: Any) -> tuple[Gateway, Clock, int]:
    """A gateway with ticket T-1 opened by the customer at T0 (broker sends dropped)."""
    clock = Clock()
    gw = build_gateway(settings_for(tmp_path, database_url=database_url, **settings), clock=clock, broker=StubBroker())
    gw.jobs.send = lambda name, *args, delay_seconds=0: None  # type: ignore[method-assign]
    event = {
        "type": "ticket.created", "id": "c-1", "occurred_at": T0.isoformat(),
        "ticket": {"id": "T-1", "title": "Help", "description": "The printer is broken.", "created_by": "customer"},
        "customer": {"id": "cust-1", "email": "ada@example.com", "name": "Ada"},
    }
    gw.events.ticket_created(TicketCreatedIn.model_validate(event).record(), now=T0)
    ticket = gw.tickets.get("T-1")
    assert ticket is not None
    return gw, clock, ticket.key


def teammate(gw: Gateway, n: int, at: datetime) -> None:
    event = {
        "type": "ticket.reply", "id": f"r-{n}", "occurred_at": at.isoformat(), "ticket_id": "T-1",
        "reply": {"id": f"reply-{n}", "author": {"name": "Sam"}, "text": f"Teammate reply {n}."},
    }
    gw.events.ticket_reply(TicketReplyIn.model_validate(event).record(), now=at)


def customer(gw: Gateway, key: int, text: str, at: datetime, *, channel: str, kind: str = "customer_reply") -> None:
    gw.db.write(lambda conn: conn.execute(insert(entries).values(
        ticket_pk=key, kind=kind, text=text, channel=channel, created_at=at, dedup_key=text[:40],
    )))


def texts(gw: Gateway, kind: str) -> list[str]:
    """The plain-text parts of the stored emails of ``kind``, oldest first."""
    found = []
    for email in reversed(gw.outbox.recent()):
        if email.kind == kind:
            message = message_from_bytes(email.raw, policy=policy.default)
            found.append(str(message.get_body(("plain",)).get_content()))  # type: ignore[union-attr]
    return found


def history_of(text: str) -> str:
    return text.split(HEADING, 1)[1] if HEADING in text else ""


def test_reply_and_state_emails_carry_the_conversation_so_far(database_url: str, tmp_path: Path) -> None:
    """Customer replies (email, Messenger) and earlier teammate replies show, newest first; the news is not repeated."""
    gw, clock, key = world(database_url, tmp_path)
    teammate(gw, 1, T0 + timedelta(minutes=1))
    clock.now = T0 + timedelta(minutes=5)
    assert gw.unseen.check(key)
    customer(gw, key, "My answer by email.", T0 + timedelta(minutes=6), channel="email")
    customer(gw, key, "My answer in the Messenger.", T0 + timedelta(minutes=7), channel="messenger")
    teammate(gw, 2, T0 + timedelta(minutes=8))
    clock.now = T0 + timedelta(minutes=12)
    assert gw.unseen.check(key)
    first, second = texts(gw, "teammate_reply")
    assert "The printer is broken." in history_of(first) and "Teammate reply 1." not in history_of(first)
    shown = history_of(second)
    order = ["My answer in the Messenger.", "My answer by email.", "Teammate reply 1.", "The printer is broken."]
    assert sorted(order, key=shown.index) == order
    assert "Teammate reply 2." not in shown and "Teammate reply 2." in second.split(HEADING)[0]

    change = {"type": "ticket.state_changed", "id": "s-1", "occurred_at": (T0 + timedelta(minutes=20)).isoformat(),
              "ticket_id": "T-1", "from": "submitted", "to": "resolved"}
    gw.events.state_changed(TicketStateChangedIn.model_validate(change).record(), now=T0 + timedelta(minutes=20))
    (state_email,) = texts(gw, "state_changed")
    shown = history_of(state_email)
    assert shown.index("Teammate reply 2.") < shown.index("My answer in the Messenger.")
    assert 'Status changed to "Resolved"' not in shown, "the change itself is the news, not history"


def test_history_is_capped_and_never_shows_what_the_customer_cannot_see(database_url: str, tmp_path: Path) -> None:
    """The entry cap counts the rest for the Messenger; kinds the Messenger does not show never appear."""
    gw, clock, key = world(database_url, tmp_path, history_max_entries=2)
    for n in range(4):
        customer(gw, key, f"Customer line {n}.", T0 + timedelta(minutes=n + 1), channel="email")
    customer(gw, key, "INTERNAL: refund refused, do not tell", T0 + timedelta(minutes=9), channel="email",
             kind="internal_note")
    teammate(gw, 1, T0 + timedelta(minutes=10))
    clock.now = T0 + timedelta(minutes=20)
    assert gw.unseen.check(key)
    (text,) = texts(gw, "teammate_reply")
    shown = history_of(text)
    assert "Customer line 3." in shown and "Customer line 2." in shown and "Customer line 1." not in shown
    assert "3 earlier messages are in the Messenger." in shown
    assert "INTERNAL" not in text


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_no_history_when_the_cap_is_zero(database_url: str, tmp_path: Path) -> None:
    """GATEWAY_HISTORY_MAX_ENTRIES=0 turns the conversation off."""
    gw, clock, key = world(database_url, tmp_path, history_max_entries=0)
    teammate(gw, 1, T0 + timedelta(minutes=1))
    clock.now = T0 + timedelta(minutes=5)
    assert gw.unseen.check(key)
    (text,) = texts(gw, "teammate_reply")
    assert HEADING not in text


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_times_are_in_the_customers_time_zone_when_the_help_desk_gives_it(database_url: str, tmp_path: Path) -> None:
    """customer.time_zone on ticket.created is kept (a later event without one keeps it) and used for times."""
    clock = Clock()
    gw = build_gateway(settings_for(tmp_path, database_url=database_url), clock=clock, broker=StubBroker())
    gw.jobs.send = lambda name, *args, delay_seconds=0: None  # type: ignore[method-assign]
    for n, zone in enumerate(("Asia/Tokyo", None)):
        customer_in: dict[str, Any] = {"id": "cust-9", "email": "kenji@example.com", "name": "Kenji", "locale": "ja"}
        if zone:
            customer_in["time_zone"] = zone
        event = {"type": "ticket.created", "id": f"c-{n}", "occurred_at": T0.isoformat(), "customer": customer_in,
                 "ticket": {"id": f"T-{n}", "title": "Help", "description": "x", "created_by": "customer"}}
        gw.events.ticket_created(TicketCreatedIn.model_validate(event).record(), now=T0)
    ticket = gw.tickets.get("T-1")
    assert ticket is not None and "Asia/Tokyo" == ticket.customer.time_zone
    reply = {"type": "ticket.reply", "id": "r-9", "occurred_at": T0.isoformat(), "ticket_id": "T-1",
             "reply": {"id": "reply-9", "author": {"name": "Sam"}, "text": "Hello."}}
    gw.events.ticket_reply(TicketReplyIn.model_validate(reply).record(), now=T0)
    clock.now = T0 + timedelta(minutes=5)
    assert gw.unseen.check(ticket.key)
    (text,) = texts(gw, "teammate_reply")
    assert "2026/11/26 21:00" in text, "12:00 UTC is 21:00 in Tokyo"
    with pytest.raises(ValueError, match="unknown time zone"):
        TicketCreatedIn.model_validate({**event, "customer": {**customer_in, "time_zone": "Mars/Olympus"}})
