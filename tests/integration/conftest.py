"""Fixtures for integration tests: a built gateway with one ticket, and its SMTP listener on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import dramatiq
import pytest

from gateway.app import Gateway, build_gateway
from gateway.models import Customer, Ticket, TicketCreated, TicketState
from gateway.settings import Settings
from inbound.commit import CommitQueue
from inbound.server import InboundServer
from tests.e2e.helpers import settings_for

CUSTOMER = "ada@customer.example.test"
NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)


def open_ticket(gw: Gateway, ticket_id: str = "T-1", email: str = CUSTOMER) -> Ticket:
    """Create a ticket as the help desk would; return it."""
    event = TicketCreated(
        event_id="evt-" + ticket_id, occurred_at=NOW, ticket_id=ticket_id, title="Printer prints blank pages",
        description="Every page comes out blank.", state=TicketState.SUBMITTED, created_by="customer",
        customer=Customer(id="c-" + email, email=email, name="Ada Lovelace"),
    )
    gw.notifier.ticket_created(event, now=NOW)
    ticket = gw.tickets.get(ticket_id)
    assert ticket is not None
    return ticket


@dataclass
class Listening:
    """A gateway, its open ticket, the reply address of that ticket and the running listener."""

    gw: Gateway
    ticket: Ticket
    reply_to: str
    server: InboundServer
    commits: CommitQueue

    @property
    def port(self) -> int:
        return self.server.bound_port


def start_listener(gw: Gateway, ticket: Ticket, **limits: float) -> Listening:
    """Start ``gw``'s SMTP listener (its limits overridden by ``limits``) and its commit queue."""
    from dataclasses import replace

    commits = gw.commit_queue()
    commits.start()
    server = gw.smtp_listener(commits)
    server.limits = replace(server.limits, **limits)  # type: ignore[arg-type]
    server.start()
    return Listening(gw, ticket, gw.keyring.address_for(ticket.key, ticket.customer.email), server, commits)


@pytest.fixture
def make_listening(tmp_path: Path, stub_broker: dramatiq.Broker) -> Iterator[object]:
    """Factory: ``make_listening(**settings)`` -> a :class:`Listening`; everything stops afterwards."""
    started: list[Listening] = []

    def make(
        settings: Settings | None = None, limits: dict[str, float] | None = None, **overrides: object
    ) -> Listening:
        gw = build_gateway(settings or settings_for(tmp_path, **overrides), broker=stub_broker)
        listening = start_listener(gw, open_ticket(gw), **(limits or {}))
        started.append(listening)
        return listening

    yield make
    for listening in started:
        listening.server.stop(no_assert=True)
        listening.commits.stop()
