"""The Messenger's view over the API: Recent tickets, threads, seen receipts, keys; SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import dramatiq
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from gateway.api import create_api
from gateway.app import Gateway, build_gateway
from gateway.store.tables import entries
from tests.helpers import API_KEY, settings_for
from tests.messenger import created, key_for, reply, state


@dataclass
class Desk:
    """The API with the help desk's key, and the gateway behind it."""

    client: TestClient
    gw: Gateway

    def post(self, event: dict[str, Any]) -> None:
        answer = self.client.post("/v1/events", json=event)
        assert 202 == answer.status_code, answer.text

    def recent(self, customer: str = "c-1", **headers: str) -> list[dict[str, Any]]:
        answer = self.client.get(f"/v1/customers/{customer}/recent-tickets", headers=headers)
        assert 200 == answer.status_code, answer.text
        return list(answer.json()["tickets"])

    def seen(self, ticket_id: str, **body: Any) -> Any:
        return self.client.post(f"/v1/tickets/{ticket_id}/seen", json={"customer_id": "c-1", **body})

    def seen_at(self) -> dict[str, datetime | None]:
        with self.gw.db.read() as conn:
            query = select(entries.c.external_id, entries.c.seen_at).where(entries.c.external_id.isnot(None))
            return {r.external_id: r.seen_at for r in conn.execute(query)}


@pytest.fixture
def desk(database_url: str, tmp_path: Path, stub_broker: dramatiq.Broker) -> Iterator[Desk]:
    """A gateway on a fresh database, its API held by the help desk."""
    gw = build_gateway(settings_for(tmp_path, database_url=database_url), broker=stub_broker)
    with TestClient(create_api(gw), headers={"Authorization": f"Bearer {API_KEY}"}) as client:
        yield Desk(client, gw)


def ids(tickets: list[dict[str, Any]]) -> list[str]:
    return [t["id"] for t in tickets]


def test_recent_tickets_put_the_latest_activity_on_top(desk: Desk) -> None:
    """A new ticket, a teammate reply and a notifying state change each move a ticket to the top."""
    desk.post(created("T-1", at="2026-11-26T10:00:00Z"))
    desk.post(created("T-2", at="2026-11-26T10:01:00Z", by="teammate"))
    assert ["T-2", "T-1"] == ids(desk.recent())
    desk.post(reply("T-1", "r-1", at="2026-11-26T10:02:00Z"))
    assert ["T-1", "T-2"] == ids(desk.recent())
    desk.post(state("T-2", "submitted", "resolved", at="2026-11-26T10:03:00Z"))
    top = desk.recent()[0]
    assert ("T-2", "resolved", "2026-11-26T10:03:00+00:00") == (top["id"], top["state"], top["last_activity_at"])


def test_closing_without_resolving_shows_the_state_quietly(desk: Desk) -> None:
    """Closed never-resolved: the state shows, the ticket does not move and nothing new is unseen."""
    desk.post(created("T-1", at="2026-11-26T10:00:00Z", by="teammate"))
    desk.post(created("T-2", at="2026-11-26T10:01:00Z"))
    desk.post(state("T-1", "submitted", "closed", at="2026-11-26T10:05:00Z"))
    assert ["T-2", "T-1"] == ids(desk.recent())
    quiet = desk.recent()[1]
    assert ("closed", 1, "2026-11-26T10:00:00+00:00") == (
        quiet["state"], quiet["unseen_count"], quiet["last_activity_at"]
    )


def test_unseen_counts_news_from_the_help_desk_only(desk: Desk) -> None:
    """Teammate-created tickets, teammate replies and state changes are unseen; the customer's own words are not."""
    desk.post(created("T-1"))
    desk.post(created("T-2", by="teammate", at="2026-11-26T09:00:00Z"))
    assert {"T-1": 0, "T-2": 1} == {t["id"]: t["unseen_count"] for t in desk.recent()}
    desk.post(reply("T-1", "r-1"))
    desk.post(reply("T-1", "r-2", at="2026-11-26T10:06:00Z"))
    desk.post(state("T-1", "submitted", "in_progress", at="2026-11-26T10:07:00Z"))
    assert {"T-1": 3, "T-2": 1} == {t["id"]: t["unseen_count"] for t in desk.recent()}


def test_receipt_up_to_a_reply_sees_it_and_everything_before(desk: Desk) -> None:
    """A receipt naming a reply (by the help desk's id or the Messenger's) resets the count up to it."""
    desk.post(created("T-1"))
    desk.post(reply("T-1", "r-1"))
    desk.post(reply("T-1", "r-2", at="2026-11-26T10:06:00Z"))
    answer = desk.seen("T-1", up_to="r-1")
    assert (200, {"ticket_id": "T-1", "newly_seen": 1, "unseen_count": 1}) == (answer.status_code, answer.json())
    last = desk.client.get("/v1/tickets/T-1/thread").json()["entries"][-1]
    assert 0 == desk.seen("T-1", up_to=last["id"]).json()["unseen_count"]
    assert 0 == desk.recent()[0]["unseen_count"]


def test_receipts_are_idempotent_and_keep_the_earliest_time(desk: Desk) -> None:
    """A repeated or late, out-of-order receipt changes nothing but an earlier seen time."""
    desk.post(created("T-1"))
    desk.post(reply("T-1", "r-1", at="2026-11-26T10:05:00Z"))
    desk.post(reply("T-1", "r-2", at="2026-11-26T10:06:00Z"))
    assert 2 == desk.seen("T-1", at="2026-11-26T10:09:00Z").json()["newly_seen"]
    assert 0 == desk.seen("T-1", at="2026-11-26T10:09:00Z").json()["newly_seen"]
    assert 1 == desk.seen("T-1", at="2026-11-26T10:05:30Z").json()["newly_seen"], "a late receipt, seen earlier"
    seen = desk.seen_at()
    assert datetime.fromisoformat("2026-11-26T10:05:30+00:00") == seen["r-1"]
    assert datetime.fromisoformat("2026-11-26T10:09:00+00:00") == seen["r-2"]
    assert 0 == desk.recent()[0]["unseen_count"]


def test_receipt_at_an_instant_covers_only_what_was_sent_before(desk: Desk) -> None:
    """``at`` sees the replies sent by then, not a reply sent afterwards."""
    desk.post(created("T-1"))
    desk.post(reply("T-1", "r-1", at="2026-11-26T10:05:00Z"))
    desk.post(reply("T-1", "r-2", at="2026-11-26T10:10:00Z"))
    assert 1 == desk.seen("T-1", at="2026-11-26T10:07:00+00:00").json()["unseen_count"]
    assert {"r-1": datetime.fromisoformat("2026-11-26T10:07:00+00:00"), "r-2": None} == desk.seen_at()


def test_receipt_naming_an_unknown_reply_is_422_and_changes_nothing(desk: Desk) -> None:
    """An unknown reply id is answered 422 naming the field and the id."""
    desk.post(created("T-1"))
    desk.post(reply("T-1", "r-1"))
    answer = desk.seen("T-1", up_to="r-404")
    assert 422 == answer.status_code
    assert {"error": "up_to: ticket 'T-1' has no reply 'r-404'", "fields": ["up_to"]} == answer.json()
    assert 1 == desk.recent()[0]["unseen_count"]


def test_receipt_without_up_to_or_at_is_422(desk: Desk) -> None:
    """A receipt must say what was seen."""
    desk.post(created("T-1"))
    answer = desk.seen("T-1")
    assert 422 == answer.status_code
    assert "give up_to (a reply id) or at (an ISO 8601 instant)" in answer.json()["error"]


def test_receipt_for_another_customers_ticket_is_403(desk: Desk) -> None:
    """A receipt whose customer is not the ticket's is refused and marks nothing."""
    desk.post(created("T-1", customer="c-2", by="teammate"))
    answer = desk.seen("T-1", at="2026-11-26T12:00:00Z")
    assert 403 == answer.status_code
    assert "customer_id" in answer.json()["error"]
    assert 1 == desk.recent("c-2")[0]["unseen_count"]


def test_thread_has_the_pill_and_every_kind_of_entry(desk: Desk) -> None:
    """The thread pins the pill and shows creation, teammate reply, the emailed customer reply and state change."""
    desk.post(created("T-1"))
    desk.post(reply("T-1", "r-1"))
    ticket = desk.gw.tickets.get("T-1")
    assert ticket is not None
    pk = desk.gw.inbound.save_raw(mail_from="c-1@customer.example.test", rcpt_to=["x"], raw=b"x", now=desk.gw.clock())
    desk.gw.inbound.land_customer_reply(
        pk, ticket_key=ticket.key, text="Still blank.", dedup_key="<m1>", threaded_by="token", now=desk.gw.clock()
    )
    desk.post(state("T-1", "submitted", "resolved", at="2099-01-01T00:00:00Z"))
    thread = desk.client.get("/v1/tickets/T-1/thread").json()
    pill = {"id": "T-1", "title": "Printer prints blank pages", "state": "resolved"}
    assert pill == thread["pill"] == thread["ticket"]
    shown = [(e["kind"], e.get("channel"), e.get("reply_id")) for e in thread["entries"]]
    expected = [("ticket_created", None, None), ("teammate_reply", None, "r-1"), ("customer_reply", "email", None),
                ("state_changed", None, None)]
    assert expected == shown
    assert {"page": {"older": None, "newer": None}} == {"page": thread["page"]}


def test_long_threads_come_in_pages_newest_first(desk: Desk) -> None:
    """Without a cursor the newest page comes; ``older`` and ``newer`` cursors walk the whole thread once."""
    desk.post(created("T-1"))
    for n in range(1, 8):
        desk.post(reply("T-1", f"r-{n}", at=f"2026-11-26T10:0{n}:00Z", text=f"reply {n}"))

    def page(**query: str) -> dict[str, Any]:
        return dict(desk.client.get("/v1/tickets/T-1/thread", params={"limit": "3", **query}).json())

    newest = page()
    assert ["reply 5", "reply 6", "reply 7"] == [e["text"] for e in newest["entries"]]
    assert newest["page"]["newer"] is None
    middle = page(before=newest["page"]["older"])
    assert ["reply 2", "reply 3", "reply 4"] == [e["text"] for e in middle["entries"]]
    oldest = page(before=middle["page"]["older"])
    assert ["ticket_created", "teammate_reply"] == [e["kind"] for e in oldest["entries"]]
    assert oldest["page"]["older"] is None
    forward = page(after=oldest["page"]["newer"])
    assert middle["entries"] == forward["entries"]
    bad = desk.client.get("/v1/tickets/T-1/thread", params={"before": "yesterday"})
    assert (422, "before: not an entry id: 'yesterday'") == (bad.status_code, bad.json()["error"])


def test_preview_is_the_latest_entry_shortened(desk: Desk) -> None:
    """The preview is the latest entry on one line, cut with an ellipsis when long."""
    desk.post(created("T-1"))
    desk.post(reply("T-1", "r-1", text="Please   try\nagain. " + "word " * 60))
    preview = desk.recent()[0]["preview"]
    assert preview.startswith("Please try again. word")
    assert preview.endswith("…")
    assert len(preview) <= 140


def test_a_messenger_key_reads_only_its_customer(desk: Desk) -> None:
    """A Messenger key sees its customer's tickets; another customer's are 404, never shown."""
    desk.post(created("T-A", customer="c-a", by="teammate"))
    desk.post(created("T-B", customer="c-b", by="teammate"))
    mine = {"Authorization": "Bearer " + key_for("c-a", desk.gw.messenger_secret)}
    get = desk.client.get
    assert ["T-A"] == ids(get("/v1/customers/c-a/recent-tickets", headers=mine).json()["tickets"])
    assert 200 == get("/v1/tickets/T-A/thread", headers=mine).status_code
    others = [
        get("/v1/customers/c-b/recent-tickets", headers=mine),
        get("/v1/tickets/T-B/thread", headers=mine),
        get("/v1/customers/c-b/events", headers=mine),
        desk.client.post("/v1/tickets/T-B/seen", headers=mine, json={"customer_id": "c-b", "at": "2026-11-26T12:00Z"}),
    ]
    assert [404, 404, 404, 404] == [r.status_code for r in others]
    assert all("Printer" not in r.text and "c-b@" not in r.text for r in others)
    missing = get("/v1/tickets/T-NONE/thread", headers=mine).json()
    assert ({"error": "no ticket 'T-B'"}, {"error": "no ticket 'T-NONE'"}) == (others[1].json(), missing), (
        "another customer's ticket looks exactly like one that does not exist"
    )
    assert 1 == desk.recent("c-b")[0]["unseen_count"], "the refused receipt marked nothing"
    assert 403 == desk.client.post("/v1/messenger-tokens", headers=mine, json={"customer_id": "c-b"}).status_code
    assert 401 == desk.client.get("/v1/outbox", headers=mine).status_code, "help-desk routes refuse Messenger keys"


def test_help_desk_issues_keys_that_expire(desk: Desk) -> None:
    """The help desk issues a key; the key works, a forged or expired one is 401 naming why."""
    issued = desk.client.post("/v1/messenger-tokens", json={"customer_id": "c-1", "ttl_seconds": 600}).json()
    assert issued["demo_url"].endswith("#token=" + issued["token"])
    assert 200 == desk.client.get("/v1/customers/c-1/recent-tickets", params={"access_token": issued["token"]},
                                  headers={"Authorization": ""}).status_code
    expired = key_for("c-1", desk.gw.messenger_secret, valid_for=timedelta(seconds=-1))
    forged = key_for("c-1", b"not-the-gateways-secret")
    answers = [desk.client.get("/v1/customers/c-1/recent-tickets", headers={"Authorization": "Bearer " + k})
               for k in (expired, forged)]
    assert [401, 401] == [a.status_code for a in answers]
    assert "expired" in answers[0].json()["error"]
    assert "does not verify" in answers[1].json()["error"]
    in_url = desk.client.get("/v1/customers/c-1/recent-tickets", params={"access_token": API_KEY},
                             headers={"Authorization": ""})
    assert 401 == in_url.status_code, "help-desk keys never travel in URLs"
