"""Inbound messages prepared in processes of their own land exactly as when the worker prepares them."""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.app import Gateway, build_gateway
from gateway.models import InboundStatus, RawMessage
from inbound.pipeline import Outcome
from tests.helpers import CUSTOMER, open_ticket, settings_for


def reply(to: str, n: int, sender: str = CUSTOMER) -> bytes:
    return (f"From: Ada Lovelace <{sender}>\r\nTo: {to}\r\nSubject: Re: Printer\r\n"
            f"Message-ID: <prep-{n}@mail.example.test>\r\n\r\nReply number {n}.\r\n\r\n"
            f"On Mon, Support wrote:\r\n> What printer is it?\r\n").encode()


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Gateway]:
    gw = build_gateway(settings_for(tmp_path, pipeline_processes=1))
    try:
        yield gw
    finally:
        if gw.preparing is not None:
            gw.preparing.close()


def store(gw: Gateway, messages: list[bytes], to: str) -> list[int]:
    return gw.inbound.save_many([RawMessage(CUSTOMER, (to,), m) for m in messages], now=gw.clock())


def summary(outcomes: dict[int, Outcome]) -> list[str]:
    return [str(outcomes[pk].status) for pk in sorted(outcomes)]


def test_a_batch_prepared_elsewhere_lands_each_reply_once(gateway: Gateway, caplog: pytest.LogCaptureFixture) -> None:
    """Replies land with their text trimmed, a forged sender is quarantined, a repeat is a duplicate,
    and the preparing process is another process than the gateway's."""
    gw = gateway
    ticket = open_ticket(gw)
    to = gw.keyring.address_for(ticket.key, CUSTOMER)
    pks = store(gw, [reply(to, 1), reply(to, 2), reply(to, 3, sender="mallory@evil.example"), reply(to, 1)], to)
    outcomes = gw.pipeline.process_many(pks)
    assert ["landed", "landed", "quarantined", "duplicate"] == summary(outcomes)
    assert not [r for r in caplog.records if "preparing them here" in r.getMessage()], "not prepared here"
    children = multiprocessing.active_children()
    assert children and all(c.pid != os.getpid() for c in children), "prepared by a process of its own"
    texts = [e.text for e in gw.tickets.thread(ticket.key) if e.kind == "customer_reply"]
    assert ["Reply number 1.", "Reply number 2."] == texts
    assert gw.pipeline.process_many(pks) == {}, "a batch processed before is not processed again"


def test_a_preparing_process_that_dies_costs_no_message(gateway: Gateway) -> None:
    """Killed, the preparing process's batch is prepared by the worker, and a new process takes the next."""
    gw = gateway
    to = gw.keyring.address_for(open_ticket(gw).key, CUSTOMER)
    assert ["landed"] == summary(gw.pipeline.process_many(store(gw, [reply(to, 1)], to)))
    (first,) = multiprocessing.active_children()
    assert first.pid is not None
    os.kill(first.pid, signal.SIGKILL)
    first.join(timeout=10)
    assert ["landed"] == summary(gw.pipeline.process_many(store(gw, [reply(to, 2)], to)))
    assert ["landed"] == summary(gw.pipeline.process_many(store(gw, [reply(to, 3)], to)))
    (second,) = multiprocessing.active_children()
    assert second.pid != first.pid
    statuses = [m.status for m in (gw.inbound.get(pk) for pk in range(1, 4)) if m is not None]
    assert [InboundStatus.LANDED] * 3 == statuses
