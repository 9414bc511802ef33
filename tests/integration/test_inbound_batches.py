"""A group commit is handed to the workers as one broker message, and every message of it is processed."""

from __future__ import annotations

from pathlib import Path

import dramatiq
import pytest
from dramatiq.brokers.redis import RedisBroker

from gateway.app import build_gateway
from gateway.broker import INBOUND_QUEUE
from gateway.models import InboundStatus, RawMessage
from tests.helpers import CUSTOMER, drain, open_ticket, settings_for

BATCH = 5


def reply(to: str, n: int) -> bytes:
    return (f"From: Ada Lovelace <{CUSTOMER}>\r\nTo: {to}\r\nSubject: Re: Printer\r\n"
            f"Message-ID: <batch-{n}@mail.example.test>\r\n\r\nReply number {n}.\r\n").encode()


def queued(broker: dramatiq.Broker) -> int:
    """Messages waiting on the inbound queue of ``broker`` (the stub's or Redis's)."""
    if isinstance(broker, RedisBroker):
        return int(broker.client.llen(f"{broker.namespace}:{INBOUND_QUEUE}"))
    return int(broker.queues[INBOUND_QUEUE].qsize())  # type: ignore[attr-defined]


@pytest.mark.parametrize("broker_fixture", ["stub_broker", "redis_broker"])
def test_every_message_of_a_group_commit_is_processed(
    broker_fixture: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Five messages committed together cost the SMTP process one broker message, and all five land."""
    broker: dramatiq.Broker = request.getfixturevalue(broker_fixture)
    gw = build_gateway(settings_for(tmp_path), broker=broker)
    to = gw.keyring.address_for(open_ticket(gw).key, CUSTOMER)
    pks = gw.inbound.save_many([RawMessage(CUSTOMER, (to,), reply(to, n)) for n in range(BATCH)], now=gw.clock())
    assert BATCH == len(set(pks))
    assert 1 == queued(broker)
    drain(broker, INBOUND_QUEUE, threads=2)
    stored = [gw.inbound.get(pk) for pk in pks]
    assert [InboundStatus.LANDED] * BATCH == [s.status for s in stored if s is not None]


def test_a_single_message_is_enqueued_directly(stub_broker: dramatiq.Broker, tmp_path: Path) -> None:
    """A batch of one is sent straight to the pipeline, with no fan-out hop."""
    gw = build_gateway(settings_for(tmp_path), broker=stub_broker)
    gw.jobs.process_inbound([7])
    (encoded,) = list(stub_broker.queues[INBOUND_QUEUE].queue)  # type: ignore[attr-defined]
    message = dramatiq.Message.decode(encoded)
    assert ("process_inbound", [[7]]) == (message.actor_name, list(message.args))
