"""The Messenger's event stream on a served API: live changes, resume, scoping, several processes."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dramatiq
import httpx
import pytest
from dramatiq.brokers.stub import StubBroker

from gateway.app import Gateway, build_gateway
from gateway.messenger.live import LocalSignal, RedisSignal
from gateway.run import Parts
from tests.helpers import API_KEY, settings_for, wait_for
from tests.messenger import EventStream, created, key_for, reply, state
from tests.services import REDIS_URL, require_service

HELPDESK = {"Authorization": f"Bearer {API_KEY}"}


class Api:
    """One API process: its parts and a help-desk client."""

    def __init__(self, gw: Gateway) -> None:
        self.gw = gw
        self.parts = Parts(gw, ["api"])
        self.parts.start()
        self.url = f"http://127.0.0.1:{self.parts.api_port}"
        self.client = httpx.Client(base_url=self.url, headers=HELPDESK, timeout=10)

    def post(self, event: dict[str, Any]) -> None:
        answer = self.client.post("/v1/events", json=event)
        assert 202 == answer.status_code, answer.text

    def stream(self, customer: str = "c-1", *, after: int | None = None, limit: int | None = None,
               headers: dict[str, str] | None = None) -> EventStream:
        extra = {"Last-Event-ID": str(after)} if after is not None else {}
        return EventStream(f"{self.url}/v1/customers/{customer}/events", headers={**(headers or HELPDESK), **extra},
                           limit=limit)

    def stop(self) -> None:
        self.client.close()
        self.parts.stop()


@pytest.fixture
def api(database_url: str, tmp_path: Path, stub_broker: dramatiq.Broker) -> Iterator[Api]:
    """The API on loopback with the in-process signal, on SQLite and PostgreSQL."""
    served = Api(build_gateway(settings_for(tmp_path, database_url=database_url), broker=stub_broker))
    yield served
    served.stop()


def test_every_change_reaches_the_customers_stream_as_it_happens(api: Api) -> None:
    """New ticket, teammate reply, quiet close and a seen receipt each push an event; other customers' do not."""
    events = api.stream(headers={"Authorization": "Bearer " + key_for("c-1", api.gw.messenger_secret)})
    api.post(created("T-OTHER", customer="c-2"))
    api.post(created("T-1", by="teammate"))
    first = events.next()
    assert ("entry", "T-1", "ticket_created", 1) == (
        first.event, first.data["ticket"]["id"], first.data["entry"]["kind"], first.data["ticket"]["unseen_count"]
    )
    api.post(reply("T-1", "r-1", text="Try a new cartridge."))
    answer = events.next()
    assert ("teammate_reply", "Try a new cartridge.", 2) == (
        answer.data["entry"]["kind"], answer.data["entry"]["text"], answer.data["ticket"]["unseen_count"]
    )
    api.post(state("T-1", "submitted", "closed"))
    closed = events.next()
    assert ("ticket", "state", "closed", 2) == (
        closed.event, closed.data["change"], closed.data["ticket"]["state"], closed.data["ticket"]["unseen_count"]
    )
    api.client.post("/v1/tickets/T-1/seen", json={"customer_id": "c-1", "up_to": "r-1"}).raise_for_status()
    seen = events.next()
    assert ("ticket", "seen", 0) == (seen.event, seen.data["change"], seen.data["ticket"]["unseen_count"])
    assert first.id < answer.id < closed.id < seen.id
    assert events.quiet(0.3), "nothing of customer c-2 arrives"


def test_a_reconnecting_messenger_misses_nothing(api: Api) -> None:
    """Reconnecting with Last-Event-ID gets exactly the changes made while away, in order, from buffer or store."""
    other_tab = api.stream()
    first = api.stream(limit=1)
    api.post(created("T-1"))
    seen_before = first.next()
    first.close()
    api.post(reply("T-1", "r-1"))
    api.post(created("T-2", at="2026-11-26T12:00:00Z"))
    missed = [("T-1", "teammate_reply"), ("T-2", "ticket_created")]
    for after, expected in ((seen_before.id, missed), (0, [("T-1", "ticket_created"), *missed])):
        resumed = api.stream(after=after)
        got = [resumed.next() for _ in expected]
        assert expected == [(e.data["ticket"]["id"], e.data["entry"]["kind"]) for e in got]
        assert resumed.quiet(0.2), "and nothing twice"
    assert 3 == len([other_tab.next() for _ in range(3)])
    cursor = api.client.get("/v1/customers/c-1/recent-tickets").json()["last_event_id"]
    from_list = api.stream(after=cursor)
    api.post(reply("T-2", "r-2"))
    assert "r-2" == from_list.next().data["entry"]["reply_id"], "recent-tickets' last_event_id starts the stream"


def test_bad_last_event_id_is_422(api: Api) -> None:
    """A Last-Event-ID that is not an event id is refused, naming the header."""
    answer = api.client.get("/v1/customers/c-1/events", headers={"Last-Event-ID": "yesterday"})
    assert (422, "Last-Event-ID: not an event id: 'yesterday'") == (answer.status_code, answer.json()["error"])


def test_a_change_from_another_process_arrives_by_the_fallback_poll(tmp_path: Path) -> None:
    """A customer reply landed by a worker that signals no one still reaches the stream (the store is the log)."""
    settings = settings_for(tmp_path, messenger_poll_seconds=0.1)
    api = Api(build_gateway(settings, broker=StubBroker()))
    worker = build_gateway(settings, broker=StubBroker(), signal=LocalSignal())
    try:
        api.post(created("T-1"))
        events = api.stream()
        ticket = worker.tickets.get("T-1")
        assert ticket is not None
        pk = worker.inbound.save_raw(mail_from="c-1@customer.example.test", rcpt_to=["x"], raw=b"x", now=worker.clock())
        worker.inbound.land_customer_reply(pk, ticket_key=ticket.key, text="Still blank.", dedup_key="<m1>",
                                           threaded_by="token", now=worker.clock())
        landed = events.next(timeout=5)
        assert ("customer_reply", "email", "Still blank.") == (
            landed.data["entry"]["kind"], landed.data["entry"]["channel"], landed.data["entry"]["text"]
        )
    finally:
        api.stop()


@pytest.mark.redis
def test_several_api_processes_share_changes_through_redis(tmp_path: Path) -> None:
    """An event posted to one API process reaches a stream on another within moments, not at the next poll."""
    require_service("Redis", "127.0.0.1", 6379)
    channel = "w2c-test-" + uuid.uuid4().hex[:8]
    signals = [RedisSignal(REDIS_URL, channel=channel) for _ in range(2)]
    one, two = (
        Api(build_gateway(settings_for(tmp_path, messenger_poll_seconds=600), broker=StubBroker(), signal=s))
        for s in signals
    )
    try:
        events = two.stream()
        wait_for(signals[1].subscribed.is_set, timeout=5, what="the Redis subscription")
        one.post(created("T-1"))
        arrived = events.next(timeout=5)
        assert ("T-1", "ticket_created") == (arrived.data["ticket"]["id"], arrived.data["entry"]["kind"])
    finally:
        one.stop()
        two.stop()
        for signal in signals:
            signal.close()


@pytest.mark.redis
def test_one_commit_wakes_each_of_its_customers_through_redis(tmp_path: Path) -> None:
    """A commit that changed several customers wakes a stream of each of them on another process."""
    require_service("Redis", "127.0.0.1", 6379)
    channel = "w2c-test-" + uuid.uuid4().hex[:8]
    publishing, listening = RedisSignal(REDIS_URL, channel=channel), RedisSignal(REDIS_URL, channel=channel)
    woken: list[str] = []
    try:
        listening.subscribe(woken.append)
        wait_for(listening.subscribed.is_set, timeout=5, what="the Redis subscription")
        publishing.publish_many(["c-1", "c-2", "c-3"])
        wait_for(lambda: len(woken) >= 3, timeout=5, what="three wake-ups")
        assert ["c-1", "c-2", "c-3"] == woken
    finally:
        publishing.close()
        listening.close()


def test_a_wake_up_that_cannot_be_sent_is_logged_and_the_commit_stands(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis down when a commit's wake-ups go out: one warning naming the customers; the change is still
    stored and served (streams find it at the fallback poll)."""

    class Unreachable(LocalSignal):
        def publish_many(self, customer_ids: Any) -> None:
            raise ConnectionError("Redis is down")

    api = Api(build_gateway(settings_for(tmp_path), broker=StubBroker(), signal=Unreachable()))
    try:
        with caplog.at_level("WARNING", logger="gateway.store.changes"):
            api.post(created("T-1"))
        warned = [r.getMessage() for r in caplog.records if r.name == "gateway.store.changes"]
        assert ["could not publish the changes of 1 customers ('c-1')"] == warned
        assert ["T-1"] == [t["id"] for t in api.client.get("/v1/customers/c-1/recent-tickets").json()["tickets"]]
    finally:
        api.stop()


def test_a_listener_without_redis_warns_once_an_outage_without_a_traceback(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis unreachable while a process listens: one warning line naming the signal, however many times it
    tries again (a line a second would bury the log)."""
    import redis.client

    from gateway.messenger import live
    from tests.services import free_port

    tries: list[int] = []
    subscribe = redis.client.PubSub.subscribe

    def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        tries.append(1)
        return subscribe(self, *args, **kwargs)

    monkeypatch.setattr(redis.client.PubSub, "subscribe", counted)
    monkeypatch.setattr(live, "RECONNECT_DELAY", 0.01)
    signal = RedisSignal(f"redis://127.0.0.1:{free_port()}/0", purpose="queue wake-ups")
    with caplog.at_level("WARNING", logger="gateway.messenger.live"):
        signal.subscribe(lambda _: None)
        try:
            wait_for(lambda: len(tries) >= 5, timeout=10, what="five tries")
        finally:
            signal.close()
    warned = [r for r in caplog.records if r.name == "gateway.messenger.live"]
    assert 1 == len(warned) and warned[0].exc_info is None
    assert warned[0].getMessage().startswith("queue wake-ups: Redis unavailable (ConnectionError: ")
