"""A PostgreSQL backend terminated under the API's pool: 503 JSON at worst, and the next request succeeds."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dramatiq
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, text

from gateway.api import create_api
from gateway.app import Gateway, build_gateway
from gateway.store import make_engine, migrate
from tests.helpers import API_KEY, settings_for
from tests.messenger import created, reply
from tests.services import postgres_schema_url

pytestmark = pytest.mark.postgres

#: Ends every backend of one application name (the gateway's pool), and only those: other tests share the server.
TERMINATE = text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = :app")


@dataclass
class Pooled:
    """The API on PostgreSQL, its connections named ``app``, and a way to end them from outside."""

    client: TestClient
    gw: Gateway
    app: str
    admin_url: str

    def terminate(self) -> int:
        """End every backend of the gateway's pool from a second connection; how many there were."""
        engine = make_engine(self.admin_url)
        try:
            with engine.connect() as conn:
                return int(conn.execute(TERMINATE, {"app": self.app}).scalar_one())
        finally:
            engine.dispose()


@pytest.fixture
def pooled(tmp_path: Path, stub_broker: dramatiq.Broker) -> Iterator[Pooled]:
    """A gateway on PostgreSQL with ticket T-1, its pool holding connections."""
    with postgres_schema_url() as admin_url:
        app = "w2c-test-" + uuid.uuid4().hex[:8]
        url = f"{admin_url}&application_name={app}"
        engine = make_engine(admin_url)
        migrate(engine)
        engine.dispose()
        gw = build_gateway(settings_for(tmp_path, database_url=url), broker=stub_broker)
        headers = {"Authorization": f"Bearer {API_KEY}"}
        with TestClient(create_api(gw), headers=headers, raise_server_exceptions=False) as client:
            assert 202 == client.post("/v1/events", json=created("T-1")).status_code
            assert 200 == client.get("/v1/tickets/T-1/thread").status_code
            yield Pooled(client, gw, app, admin_url)
        gw.db.dispose()


def test_a_request_after_the_pool_s_backends_were_terminated_succeeds(pooled: Pooled) -> None:
    """Pooled connections ended by the server (as by a restart) are replaced at checkout: reads and writes answer."""
    assert pooled.terminate() >= 1
    assert 202 == pooled.client.post("/v1/events", json=reply("T-1", "r-1")).status_code
    assert pooled.terminate() >= 1
    answer = pooled.client.get("/v1/tickets/T-1/thread")
    assert 200 == answer.status_code, answer.text
    assert ["ticket_created", "teammate_reply"] == [e["kind"] for e in answer.json()["entries"]]


def test_a_backend_terminated_mid_request_answers_503_json_then_the_next_succeeds(pooled: Pooled) -> None:
    """A connection ended inside a request's transaction answers 503 ``{"error"}``; the following request is 200."""

    def dies_midway(conn: Connection) -> None:
        conn.execute(text("SELECT 1"))
        pooled.terminate()
        conn.execute(text("SELECT 1"))

    app = pooled.client.app

    @app.post("/test/dies-midway")  # type: ignore[attr-defined, untyped-decorator]
    def route() -> None:
        pooled.gw.db.write(dies_midway)

    answer = pooled.client.post("/test/dies-midway")
    assert 503 == answer.status_code, answer.text
    assert {"error": "the store is unavailable; try again"} == answer.json()
    assert 202 == pooled.client.post("/v1/events", json=reply("T-1", "r-1")).status_code
    assert 200 == pooled.client.get("/v1/tickets/T-1/thread").status_code
