"""ticket.reply and ticket.state_changed on POST /v1/events, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from pathlib import Path
from typing import Any

import dramatiq
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from gateway.api import create_api
from gateway.app import Gateway, build_gateway
from gateway.models import TeammateReply, TicketReplied, TicketStateChanged
from gateway.store import make_engine
from gateway.store.tables import entries
from outbound.event_store import UNSEEN_CHECKS_DUE
from outbound.events import EventApplier
from outbound.render import Branding, RenderedEmail, Renderer, find_templates
from tests.helpers import API_KEY, settings_for

AT = "2026-11-26T10:00:00Z"
HTML = "<p>Try a <b>new</b> cartridge.</p>"


@dataclass
class Desk:
    """The API as the help desk sees it, with the gateway behind it."""

    client: TestClient
    gw: Gateway
    scheduled: list[tuple[int, datetime]] = field(default_factory=list)

    def post(self, event: dict[str, Any]) -> Any:
        return self.client.post("/v1/events", json=event)

    def thread(self, ticket_id: str = "T-1") -> dict[str, Any]:
        return dict(self.client.get(f"/v1/tickets/{ticket_id}/thread").json())

    def emails(self) -> list[dict[str, Any]]:
        return list(reversed(self.client.get("/v1/outbox").json()["emails"]))


@pytest.fixture
def desk(database_url: str, tmp_path: Path, stub_broker: dramatiq.Broker) -> Iterator[Desk]:
    """A gateway on a fresh database with one ticket, T-1, created by the customer."""
    gw = build_gateway(settings_for(tmp_path, database_url=database_url, unseen_delay_seconds=180), broker=stub_broker)
    scheduled: list[tuple[int, datetime]] = []
    gw.db.after_commit(UNSEEN_CHECKS_DUE, scheduled.extend)
    with TestClient(create_api(gw), headers={"Authorization": f"Bearer {API_KEY}"}) as client:
        d = Desk(client=client, gw=gw, scheduled=scheduled)
        assert 202 == d.post(created()).status_code
        yield d


def applier_for(gw: Gateway, renderer: Renderer) -> EventApplier:
    """The gateway's event applier, rendering with ``renderer``."""
    return EventApplier(
        db=gw.db, renderer=renderer, keyring=gw.keyring, from_address=gw.settings.from_address,
        unseen_delay=timedelta(seconds=gw.settings.unseen_delay_seconds),
    )


class BrokenRenderer(Renderer):
    """Fails to render state change emails."""

    def render(self, kind: str, locale: str, context: Any) -> RenderedEmail:
        if kind == "state_changed":
            raise RuntimeError("the template broke")
        return super().render(kind, locale, context)


def created(ticket_id: str = "T-1") -> dict[str, Any]:
    return {
        "type": "ticket.created", "id": f"created-{ticket_id}", "occurred_at": AT,
        "ticket": {
            "id": ticket_id, "title": "Printer prints blank pages", "state": "submitted", "created_by": "customer",
        },
        "customer": {"id": "c-1", "email": "ada@customer.example.test", "name": "Ada", "locale": "en"},
    }


def reply(event_id: str = "evt-r1", reply_id: str = "r-1", ticket_id: str = "T-1") -> dict[str, Any]:
    return {
        "type": "ticket.reply", "id": event_id, "occurred_at": "2026-11-26T10:05:00Z", "ticket_id": ticket_id,
        "reply": {
            "id": reply_id, "author": {"name": "Grace"}, "text": "Try a new cartridge.", "html": HTML,
        },
    }


def state(old: str, new: str, event_id: str | None = None, ticket_id: str = "T-1") -> dict[str, Any]:
    return {
        "type": "ticket.state_changed", "id": event_id or f"evt-{old}-{new}", "occurred_at": "2026-11-26T11:00:00Z",
        "ticket_id": ticket_id, "from": old, "to": new,
    }


def test_reply_lands_on_the_thread_due_for_the_unseen_check_and_sends_nothing(desk: Desk) -> None:
    """A teammate reply is on the thread with its author, its unseen check is due 180 s later, no email is sent."""
    answer = desk.post(reply())
    assert 202 == answer.status_code, answer.text
    assert ["thread:teammate_reply", "unseen_check:2026-11-26T10:08:00+00:00"] == answer.json()["actions"]
    last = desk.thread()["entries"][-1]
    assert ("teammate_reply", "Try a new cartridge.", {"name": "Grace"}) == (last["kind"], last["text"], last["author"])
    assert ["ticket_created"] == [e["kind"] for e in desk.emails()]
    ticket = desk.gw.tickets.get("T-1")
    assert ticket is not None
    assert [(ticket.key, datetime.fromisoformat("2026-11-26T10:08:00+00:00"))] == desk.scheduled
    assert datetime.fromisoformat("2026-11-26T10:05:00+00:00") == ticket.last_activity_at
    query = select(entries.c.due_at, entries.c.external_id, entries.c.html).where(entries.c.kind == "teammate_reply")
    with make_engine(desk.gw.settings.database_url).connect() as conn:
        row = conn.execute(query).one()
    assert (datetime.fromisoformat("2026-11-26T10:08:00+00:00"), "r-1", HTML) == tuple(row)


def test_reply_to_an_unknown_ticket_is_404_naming_it(desk: Desk) -> None:
    """An event for a ticket the gateway does not know gets 404 naming the ticket."""
    answer = desk.post(reply(ticket_id="T-404"))
    assert 404 == answer.status_code
    assert {"error": "no ticket 'T-404'", "code": "UnknownTicket"} == answer.json()
    assert 202 == desk.post(created("T-404")).status_code
    assert 202 == desk.post(reply(ticket_id="T-404")).status_code, "a refused event id was not burnt"


def test_reply_id_seen_before_is_409_and_changes_nothing(desk: Desk) -> None:
    """The same reply id under a new event id is refused; the thread keeps one copy."""
    assert 202 == desk.post(reply()).status_code
    again = desk.post(reply(event_id="evt-r2"))
    assert 409 == again.status_code
    assert "DuplicateReply" == again.json()["code"]
    assert "'r-1'" in again.json()["error"]
    assert 1 == sum(e["kind"] == "teammate_reply" for e in desk.thread()["entries"])
    assert 1 == len(desk.scheduled)


def test_repeated_reply_event_answers_the_same_and_schedules_once(desk: Desk) -> None:
    """Posting the same reply event twice answers the same and changes nothing the second time."""
    first, again = desk.post(reply()), desk.post(reply())
    assert (202, first.json()) == (again.status_code, again.json())
    assert "true" == again.headers["Idempotent-Replayed"]
    assert 1 == sum(e["kind"] == "teammate_reply" for e in desk.thread()["entries"])
    assert 1 == len(desk.scheduled)


def test_state_change_moves_the_ticket_and_emails_the_customer_in_the_same_thread(desk: Desk) -> None:
    """A state change updates the ticket, adds an entry and queues an email threaded under the first."""
    answer = desk.post(state("submitted", "in_progress"))
    assert 202 == answer.status_code, answer.text
    thread = desk.thread()
    assert "in_progress" == thread["ticket"]["state"]
    assert {"from": "submitted", "to": "in_progress"} == thread["entries"][-1]["state"]
    first, second = (message_from_bytes(e["raw"].encode()) for e in desk.emails())
    assert ["ticket_created", "state_changed"] == [e["kind"] for e in desk.emails()]
    assert first["Message-ID"] == second["In-Reply-To"] == second["References"]
    assert first["Subject"] == second["Subject"]


def test_closing_a_ticket_never_resolved_notifies_nobody(desk: Desk) -> None:
    """Closed without having been resolved: the state changes, but no entry and no email."""
    assert 202 == desk.post(state("submitted", "closed")).status_code
    thread = desk.thread()
    assert "closed" == thread["ticket"]["state"]
    assert ["ticket_created"] == [e["kind"] for e in thread["entries"]]
    assert ["ticket_created"] == [e["kind"] for e in desk.emails()]


def test_closing_a_resolved_ticket_emails_the_customer(desk: Desk) -> None:
    """Closed after being resolved: entry and email as for any state change."""
    desk.post(state("submitted", "resolved")).raise_for_status()
    desk.post(state("resolved", "closed")).raise_for_status()
    assert ["ticket_created", "state_changed", "state_changed"] == [e["kind"] for e in desk.emails()]


@pytest.mark.parametrize(
    ("old", "new", "status", "code", "says"),
    [
        ("in_progress", "resolved", 409, "StateMismatch", "ticket 'T-1' is 'submitted', not 'in_progress'"),
        ("submitted", "finished", 422, "UnknownState", "unknown state 'finished' in 'to'"),
        ("submitted", "submitted", 422, "InvalidTransition", "both 'submitted'"),
    ],
)
def test_impossible_state_change_is_refused_and_changes_nothing(
    desk: Desk, old: str, new: str, status: int, code: str, says: str
) -> None:
    """An impossible state change gets a 4xx saying what is wrong; the ticket stays as it was."""
    answer = desk.post(state(old, new))
    assert (status, code) == (answer.status_code, answer.json()["code"])
    assert says in answer.json()["error"]
    assert "submitted" == desk.thread()["ticket"]["state"]
    assert 1 == len(desk.emails())


def test_state_change_for_unknown_ticket_is_404(desk: Desk) -> None:
    """A state change naming an unknown ticket is refused with 404."""
    answer = desk.post(state("submitted", "resolved", ticket_id="nope"))
    assert (404, "UnknownTicket") == (answer.status_code, answer.json()["code"])


def test_event_whose_email_cannot_be_built_is_not_half_applied(desk: Desk) -> None:
    """If the email of a state change fails to render, neither the state nor the thread changes."""
    gw = desk.gw
    broken = BrokenRenderer(find_templates(), branding=Branding(), markers={"en": "##-"}, messenger_url="http://localhost/")
    working, gw.events = gw.events, applier_for(gw, broken)
    with TestClient(create_api(gw), headers={"Authorization": f"Bearer {API_KEY}"}) as client, \
            pytest.raises(RuntimeError, match="the template broke"):
        client.post("/v1/events", json=state("submitted", "resolved"))
    gw.events = working
    assert "submitted" == desk.thread()["ticket"]["state"]
    assert ["ticket_created"] == [e["kind"] for e in desk.thread()["entries"]]
    assert 1 == len(desk.emails())
    assert 202 == desk.post(state("submitted", "resolved")).status_code, "the refused event id was not burnt"


def concurrently(calls: list[Any]) -> list[Any]:
    """Run ``calls`` from threads released at once; each one's result or the exception it raised."""
    barrier = threading.Barrier(len(calls))
    outcomes: list[Any] = [None] * len(calls)

    def run(n: int) -> None:
        barrier.wait()
        try:
            outcomes[n] = calls[n]()
        except Exception as exc:  # noqa: BLE001 - the test compares it
            outcomes[n] = exc

    threads = [threading.Thread(target=run, args=(n,)) for n in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return outcomes


def test_concurrent_repeats_of_an_event_all_get_the_first_answer(desk: Desk) -> None:
    """Five copies of one ticket.reply, then of one state change, posted at the same moment: each
    is applied once and every copy answers the first answer (no 409 for the late ones)."""
    now = datetime(2026, 11, 26, 10, 5, tzinfo=UTC)
    replied = TicketReplied(event_id="evt-same-reply", occurred_at=now, ticket_id="T-1", reply=TeammateReply(
        id="r-same", author_name="Grace", text="Try a new cartridge.", html=None, created_at=now))
    changed = TicketStateChanged(event_id="evt-same-state", occurred_at=now, ticket_id="T-1",
                                 state_from="submitted", state_to="in_progress")
    for apply in (lambda: desk.gw.events.ticket_reply(replied, now=now),
                  lambda: desk.gw.events.state_changed(changed, now=now)):
        outcomes = concurrently([apply] * 5)
        assert [] == [o for o in outcomes if isinstance(o, Exception)]
        assert 1 == sum(not o.replayed for o in outcomes)
        assert 1 == len({json.dumps(o.response, sort_keys=True) for o in outcomes})
    kinds = [e["kind"] for e in desk.thread()["entries"]]
    assert ["ticket_created", "teammate_reply", "state_changed"] == kinds


def test_a_reused_event_id_with_another_body_is_409_and_applies_nothing(desk: Desk) -> None:
    """An event id first used for ticket.created, then for a state change: 409 naming the conflict."""
    again = desk.post({**state("submitted", "resolved"), "id": "created-T-1"})
    assert (409, "EventIdReused") == (again.status_code, again.json()["code"])
    assert "created-T-1" in again.json()["error"]
    assert "submitted" == desk.thread()["ticket"]["state"]
    assert 202 == desk.post(created()).status_code, "the same body again is a plain repeat"
    first = desk.post(reply())
    changed_text = reply()
    changed_text["reply"]["text"] = "Something else entirely."
    assert 202 == first.status_code
    reused = desk.post(changed_text)
    assert (409, "EventIdReused") == (reused.status_code, reused.json()["code"])
    assert ["Try a new cartridge."] == [e["text"] for e in desk.thread()["entries"] if e["kind"] == "teammate_reply"]
