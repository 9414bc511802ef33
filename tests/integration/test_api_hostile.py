"""Hostile and broken requests answer 4xx with the JSON error, never 500, on SQLite and PostgreSQL."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dramatiq
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from gateway.api import create_api
from gateway.app import Gateway, build_gateway
from gateway.store.tables import entries, tickets
from tests.helpers import API_KEY, settings_for
from tests.messenger import created, key_for, reply

RAW = b"From: ada@customer.example.test\r\nSubject: hello\r\n\r\nHi.\r\n"


@dataclass
class Desk:
    """The API with the help desk's key (server errors answered, not raised), and the gateway behind it."""

    client: TestClient
    gw: Gateway

    def post(self, event: dict[str, Any]) -> Any:
        return self.client.post("/v1/events", json=event)


@pytest.fixture
def desk(database_url: str, tmp_path: Path, stub_broker: dramatiq.Broker, caplog: pytest.LogCaptureFixture) -> (
    Iterator[Desk]
):
    """A gateway on a fresh database with ticket T-1 of customer c-1; no error may be logged."""
    gw = build_gateway(settings_for(tmp_path, database_url=database_url), broker=stub_broker)
    headers = {"Authorization": f"Bearer {API_KEY}"}
    with TestClient(create_api(gw), headers=headers, raise_server_exceptions=False) as client:
        d = Desk(client, gw)
        assert 202 == d.post(created("T-1")).status_code
        with caplog.at_level(logging.ERROR):
            yield d
    assert [] == [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


def refused(answer: Any, status: int) -> dict[str, Any]:
    """The JSON error body of ``answer``, which must have ``status``."""
    assert status == answer.status_code, answer.text
    body: dict[str, Any] = answer.json()
    assert "error" in body
    return body


def test_a_messenger_key_with_a_non_ascii_character_is_refused(desk: Desk) -> None:
    """``Bearer w2cm.abc.\\xe9`` and ``?access_token=w2cm.abc.\\xe9`` answer 401, not 500."""
    url = "/v1/customers/c-1/recent-tickets"
    refused(desk.client.get(url, headers={"Authorization": "Bearer w2cm.abc.\xe9".encode("latin-1")}), 401)
    refused(desk.client.get(url + "?access_token=w2cm.abc.%C3%A9", headers={"Authorization": ""}), 401)
    refused(desk.client.get(url + "?access_token=w2cm.abc.%E9", headers={"Authorization": ""}), 401)


@pytest.mark.parametrize("at", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "1000-01-01T00:00:00Z"])
def test_an_instant_out_of_range_is_refused_naming_the_field(desk: Desk, at: str) -> None:
    """``occurred_at`` that cannot be turned into UTC (or is absurd) answers 422 naming ``occurred_at``."""
    assert ["occurred_at"] == refused(desk.post(created("T-2", at=at)), 422)["fields"]
    assert ["occurred_at"] == refused(desk.post(reply("T-1", "r-1", at=at)), 422)["fields"]


def test_a_seen_receipt_out_of_range_is_refused_naming_the_field(desk: Desk) -> None:
    """A seen receipt ``at`` of year 1 answers 422 naming ``at``."""
    answer = desk.client.post("/v1/tickets/T-1/seen", json={"customer_id": "c-1", "at": "0001-01-01T00:00:00+01:00"})
    assert ["at"] == refused(answer, 422)["fields"]


@pytest.mark.parametrize("path", [
    "/v1/quarantine/9223372036854775808", "/v1/quarantine/9223372036854775808/release",
    "/v1/webhooks/9223372036854775808/replay", "/v1/quarantine/99999999999999999999999",
])
def test_a_row_id_too_large_for_the_store_is_refused(desk: Desk, path: str) -> None:
    """A row id beyond what every backend holds (32 bits on PostgreSQL) answers 422, not the store's overflow."""
    method = desk.client.post if path.endswith(("release", "replay")) else desk.client.get
    assert ["path.pk"] == refused(method(path), 422)["fields"]
    largest = path.replace("99999999999999999999999", "9223372036854775808").replace("9223372036854775808",
                                                                                     str(2**31 - 1))
    refused(method(largest), 404)
    assert ["path.pk"] == refused(method(largest.replace(str(2**31 - 1), str(2**31))), 422)["fields"]


def test_a_ticket_id_with_a_slash_is_readable(desk: Desk) -> None:
    """Ticket ``A/B`` is read through the thread API, its id URL-encoded or not, and takes receipts."""
    assert 202 == desk.post(created("A/B")).status_code
    for path in ("/v1/tickets/A%2FB/thread", "/v1/tickets/A/B/thread"):
        answer = desk.client.get(path)
        assert 200 == answer.status_code, answer.text
        assert "A/B" == answer.json()["pill"]["id"]
    answer = desk.client.post("/v1/tickets/A%2FB/seen", json={"customer_id": "c-1", "at": "2026-11-26T12:00:00Z"})
    assert 200 == answer.status_code, answer.text


def test_a_stream_cursor_too_large_is_refused(desk: Desk) -> None:
    """``last_event_id=10^23`` (query or header) answers 422 instead of a stream that stays silent."""
    url = "/v1/customers/c-1/events"
    assert ["query.last_event_id"] == refused(desk.client.get(f"{url}?last_event_id={10**23}"), 422)["fields"]
    refused(desk.client.get(url, headers={"Last-Event-ID": str(10**23)}), 422)


def test_an_invalid_event_names_only_the_fields_of_its_type(desk: Desk) -> None:
    """A ``ticket.reply`` without its fields lists those, not the ones of the other event types."""
    body = refused(desk.post({"type": "ticket.reply", "id": "evt-9"}), 422)
    assert ["occurred_at", "ticket_id", "reply"] == body["fields"]
    assert "ticket.created" not in body["error"] and "customer" not in body["error"]


@pytest.mark.parametrize(("where", "event", "field"), [
    ("ticket id", created("T\x00X"), "ticket.id"),
    ("customer id", {**created("T-3"), "customer": {**created("T-3")["customer"], "id": "c\x00"}}, "customer.id"),
    ("reply id", reply("T-1", "r\n1"), "reply.id"),
    ("ticket_id", {**reply("T-1", "r-1"), "ticket_id": "T-1\x00"}, "ticket_id"),
    ("event id", {**reply("T-1", "r-1"), "id": "evt\x1b"}, "id"),
])
def test_control_characters_in_an_id_are_refused(desk: Desk, where: str, event: dict[str, Any], field: str) -> None:
    """NUL and other control characters in an identifier answer 422 naming it, on both backends."""
    assert field in refused(desk.post(event), 422)["fields"], where


def test_nul_in_free_text_becomes_the_replacement_character(desk: Desk) -> None:
    """NUL in a title, a name or a reply's text is stored as U+FFFD (PostgreSQL cannot hold NUL)."""
    event = created("T-4", title="Printer\x00jam")
    event["customer"] = {**event["customer"], "id": "c-4", "name": "Ada\x00"}
    assert 202 == desk.post(event).status_code
    answer = desk.post(reply("T-1", "r-1", text="Try\x00this."))
    assert 202 == answer.status_code, answer.text
    with desk.gw.db.read() as conn:
        title = conn.execute(select(tickets.c.title).where(tickets.c.external_id == "T-4")).scalar()
        text = conn.execute(select(entries.c.text).where(entries.c.external_id == "r-1")).scalar()
    assert "Printer\ufffdjam" == title
    assert "Try\ufffdthis." == text


@pytest.mark.parametrize(("event", "field"), [
    (created("T" * 201), "ticket.id"),
    (created("T-5", title="t" * 501), "ticket.title"),
    (reply("T-1", "r" * 201), "reply.id"),
])
def test_overlong_values_are_refused_naming_the_field(desk: Desk, event: dict[str, Any], field: str) -> None:
    """A value longer than its column answers 422 naming it, before it reaches the store."""
    assert field in refused(desk.post(event), 422)["fields"]


def test_an_overlong_or_broken_envelope_sender_is_refused(desk: Desk) -> None:
    """``POST /v1/inbound?mail_from=<10,000 characters>`` (or with NUL) answers 422, not 500."""
    headers = {"Content-Type": "message/rfc822"}
    answer = desk.client.post("/v1/inbound", params={"mail_from": "a" * 10_000}, content=RAW, headers=headers)
    assert ["query.mail_from"] == refused(answer, 422)["fields"]
    answer = desk.client.post("/v1/inbound", params={"mail_from": "a\x00@b.example"}, content=RAW, headers=headers)
    assert ["query.mail_from"] == refused(answer, 422)["fields"]
    answer = desk.client.post("/v1/inbound", params={"recipient": "r" * 400}, content=RAW, headers=headers)
    assert ["query.recipient.0"] == refused(answer, 422)["fields"]


@pytest.mark.parametrize("ticket_id", ["T%00X", "T" * 300])
def test_a_path_id_the_store_cannot_hold_names_nothing(desk: Desk, ticket_id: str) -> None:
    """A thread, receipt or stream asked for with NUL or an overlong id answers 404, not the store's error."""
    refused(desk.client.get(f"/v1/tickets/{ticket_id}/thread"), 404)
    refused(desk.client.post(f"/v1/tickets/{ticket_id}/seen", json={"customer_id": "c-1", "at": "2026-11-26T12:00Z"}),
            404)
    refused(desk.client.get(f"/v1/customers/{ticket_id}/recent-tickets"), 404)
    refused(desk.client.get(f"/v1/customers/{ticket_id}/events"), 404)


def test_a_messenger_key_still_reads_its_customer(desk: Desk) -> None:
    """The checks above leave a valid Messenger key working."""
    key = key_for("c-1", desk.gw.messenger_secret)
    answer = desk.client.get("/v1/customers/c-1/recent-tickets", headers={"Authorization": f"Bearer {key}"})
    assert 200 == answer.status_code, answer.text
