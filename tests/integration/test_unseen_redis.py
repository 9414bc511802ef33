"""R2 on the real Redis broker with a one-second unseen delay: emailed once, never when seen, nothing lost."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dramatiq
import httpx
import pytest
from dramatiq.brokers.redis import RedisBroker

from gateway.app import Gateway, build_gateway
from gateway.models import OutboxStatus
from gateway.run import Parts
from tests.helpers import API_KEY, settings_for, wait_for
from tests.services import REDIS_URL

pytestmark = pytest.mark.redis

CREATED = {
    "type": "ticket.created",
    "id": "evt-created",
    "occurred_at": "2026-11-26T10:00:00Z",
    "ticket": {"id": "T-9", "title": "Invoice is wrong", "description": "Twice the amount.", "created_by": "customer"},
    "customer": {"id": "cust-9", "email": "grace@customer.example.test", "name": "Grace", "locale": "en"},
}


def reply_event(n: int, occurred_at: str) -> dict[str, Any]:
    return {
        "type": "ticket.reply",
        "id": f"evt-reply-{n}",
        "occurred_at": occurred_at,
        "ticket_id": "T-9",
        "reply": {"id": f"reply-{n}", "author": {"name": "Sam from Billing"}, "text": f"Answer number {n}."},
    }


def gateway(tmp_path: Path, broker: dramatiq.Broker, *, delay: int = 1) -> Gateway:
    gw = build_gateway(
        settings_for(tmp_path, unseen_delay_seconds=delay, unseen_max_wait_seconds=3 * delay), broker=broker
    )
    gw.sweep.grace = gw.sweep.grace.__class__(seconds=0.5)
    return gw


@pytest.fixture
def served(tmp_path: Path, redis_broker: dramatiq.Broker) -> Iterator[Parts]:
    """The whole gateway on loopback with the real Redis broker and a one-second unseen delay."""
    with Parts(gateway(tmp_path, redis_broker), sweep_interval=0.2) as parts:
        yield parts


def client(parts: Parts) -> httpx.Client:
    return httpx.Client(
        base_url=f"http://127.0.0.1:{parts.api_port}", headers={"Authorization": f"Bearer {API_KEY}"}, timeout=10
    )


def reply_emails(gw: Gateway) -> list[Any]:
    return [e for e in gw.outbox.recent() if e.kind == "teammate_reply"]


def sent_reply_emails(gw: Gateway) -> list[Any]:
    return [e for e in reply_emails(gw) if e.status == OutboxStatus.SENT]


def now_iso(gw: Gateway) -> str:
    return gw.clock().isoformat()


def settle(parts: Parts) -> None:
    """Wait until no unseen check is queued or delayed any more."""
    parts.gw.jobs.broker.join("unseen", timeout=20_000)


def test_unseen_reply_is_emailed_once(served: Parts) -> None:
    """A reply nobody sees in the Messenger is emailed after the delay, exactly once."""
    with client(served) as api:
        api.post("/v1/events", json=CREATED).raise_for_status()
        api.post("/v1/events", json=reply_event(1, now_iso(served.gw))).raise_for_status()
        assert [] == reply_emails(served.gw), "not before the delay"
        email = wait_for(lambda: sent_reply_emails(served.gw), what="the email")
    settle(served)
    assert 1 == len(reply_emails(served.gw))
    assert "Answer number 1." in email[0].raw.decode()


def test_reply_seen_in_the_messenger_is_never_emailed(tmp_path: Path, redis_broker: dramatiq.Broker) -> None:
    """A reply the customer sees before its window ends is never emailed, even after the check has run.
    Its window is 5 s, not 1: a test machine that stalls for a second between the reply and the receipt
    must not make the receipt come too late (the check runs on time)."""
    with Parts(gateway(tmp_path, redis_broker, delay=5), sweep_interval=0.2) as served:
        with client(served) as api:
            api.post("/v1/events", json=CREATED).raise_for_status()
            api.post("/v1/events", json=reply_event(1, now_iso(served.gw))).raise_for_status()
            seen = api.post("/v1/tickets/T-9/seen", json={"customer_id": "cust-9", "up_to": "reply-1"})
            assert 200 == seen.status_code, seen.text
        settle(served)
        ticket = served.gw.tickets.get("T-9")
        assert ticket is not None
        assert served.gw.unseen.next_due(ticket.key) is None, "nothing left to check"
        assert [] == reply_emails(served.gw)


def test_a_burst_of_replies_gives_one_email(served: Parts) -> None:
    """Three quick unseen replies go out as one email, newest first."""
    with client(served) as api:
        api.post("/v1/events", json=CREATED).raise_for_status()
        for n in (1, 2, 3):
            api.post("/v1/events", json=reply_event(n, now_iso(served.gw))).raise_for_status()
        wait_for(lambda: reply_emails(served.gw), what="the email")
    settle(served)
    (email,) = reply_emails(served.gw)
    body = email.raw.decode()
    assert body.index("Answer number 3.") < body.index("Answer number 2.") < body.index("Answer number 1.")


def test_check_lost_with_redis_flushed_is_still_sent_once(served: Parts) -> None:
    """Losing every pending broker message (Redis flushed) still emails the reply once: the sweeper finds it."""
    broker = served.gw.jobs.broker
    with client(served) as api:
        api.post("/v1/events", json=CREATED).raise_for_status()
        api.post("/v1/events", json=reply_event(1, now_iso(served.gw))).raise_for_status()
    for key in broker.client.scan_iter(f"{broker.namespace}*"):  # type: ignore[attr-defined]
        broker.client.delete(key)  # type: ignore[attr-defined]
    wait_for(lambda: [e for e in reply_emails(served.gw) if e.status == OutboxStatus.SENT], what="the email")
    settle(served)
    assert 1 == len(reply_emails(served.gw))


def test_worker_killed_after_claiming_sends_once_after_restart(tmp_path: Path, redis_broker: dramatiq.Broker) -> None:
    """A worker that dies after claiming the replies but before handing the email on: sent once after restart."""
    first = gateway(tmp_path, redis_broker)
    with Parts(first, ("api",)) as api_only, client(api_only) as api:
        api.post("/v1/events", json=CREATED).raise_for_status()
        api.post("/v1/events", json=reply_event(1, now_iso(first))).raise_for_status()
    ticket = first.tickets.get("T-9")
    assert ticket is not None

    def die(name: str, *args: Any, delay_seconds: float = 0) -> None:
        raise SystemExit(f"worker killed before sending {name}")

    first.jobs.send = die  # type: ignore[method-assign]
    wait_for(lambda: first.unseen.next_due(ticket.key) <= first.clock(), what="the reply to fall due")  # type: ignore[operator]
    with pytest.raises(SystemExit):
        first.unseen.check(ticket.key)
    (claimed,) = reply_emails(first)
    assert OutboxStatus.QUEUED == claimed.status

    # The restarted process: a new broker connection on the same Redis namespace.
    restarted = gateway(tmp_path, RedisBroker(url=REDIS_URL, namespace=redis_broker.namespace))  # type: ignore[attr-defined]
    with Parts(restarted, ("worker",), sweep_interval=0.2):
        wait_for(lambda: [e for e in reply_emails(restarted) if e.status == OutboxStatus.SENT], what="the email")
        restarted.jobs.broker.join("outbound", timeout=20_000)
    assert [claimed.message_id] == [e.message_id for e in reply_emails(restarted)]
