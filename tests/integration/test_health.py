"""Liveness and readiness: ``/healthz`` always answers, ``/readyz`` answers 503 naming the store or
broker while it is down and 200 once it is back."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from gateway.api import create_api
from gateway.app import build_gateway
from gateway.store import make_engine, migrate
from tests.helpers import settings_for
from tests.services import POSTGRES_URL, REDIS_URL, free_port, postgres_schema_url, require_service


@pytest.fixture
def stub() -> Iterator[StubBroker]:
    """The in-process broker."""
    broker = StubBroker()
    yield broker
    broker.close()


def rename_schema(old: str, new: str) -> None:
    """Rename a PostgreSQL schema: the gateway's search path then names none, as if its store were gone."""
    admin = create_engine(POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'ALTER SCHEMA "{old}" RENAME TO "{new}"'))
    admin.dispose()


@pytest.mark.postgres
def test_readyz_is_503_naming_the_store_while_it_is_gone_and_200_after(tmp_path: Path, stub: StubBroker) -> None:
    """With the store's schema gone /readyz is 503 {"store": "down"} and /healthz still 200; back, 200."""
    with postgres_schema_url() as url:
        migrate(make_engine(url))
        schema = url.rsplit("%3D", 1)[1]
        with TestClient(create_api(build_gateway(settings_for(tmp_path, database_url=url), broker=stub))) as client:
            assert 200 == client.get("/readyz").status_code
            rename_schema(schema, schema + "_away")
            try:
                down = client.get("/readyz")
                alive = client.get("/healthz")
            finally:
                rename_schema(schema + "_away", schema)
            back = client.get("/readyz")
    assert (503, {"status": "unavailable", "checks": {"store": "down"}}) == (down.status_code, down.json())
    assert (200, {"status": "ok"}) == (alive.status_code, alive.json())
    assert (200, {"status": "ready", "checks": {"store": "ok"}}) == (back.status_code, back.json())


@pytest.mark.redis
def test_readyz_checks_the_broker_when_redis_is_configured(tmp_path: Path) -> None:
    """With Redis configured, /readyz checks it too: 200 when it answers, 503 naming the broker when not."""
    require_service("Redis", "127.0.0.1", 6379)
    settings = settings_for(tmp_path, redis_url=REDIS_URL)
    answers = []
    for broker in (RedisBroker(url=REDIS_URL), RedisBroker(url=f"redis://127.0.0.1:{free_port()}/0")):
        try:
            with TestClient(create_api(build_gateway(settings, broker=broker))) as client:
                answer = client.get("/readyz")
                answers.append((answer.status_code, answer.json()["checks"]))
        finally:
            broker.close()
    assert [(200, {"store": "ok", "broker": "ok"}), (503, {"store": "ok", "broker": "down"})] == answers
