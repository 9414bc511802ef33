"""Shared fixtures: databases (SQLite and real PostgreSQL), brokers (in-process and real Redis)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import dramatiq
import pytest

from gateway.broker import make_broker
from gateway.store import make_engine, migrate
from tests.services import REDIS_URL, postgres_schema_url, require_service


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database: a SQLite file, then a fresh schema in the real PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'gateway.sqlite3'}"
        migrate(make_engine(url))
        yield url
        return
    with postgres_schema_url() as url:
        engine = make_engine(url)
        migrate(engine)
        engine.dispose()
        yield url


@pytest.fixture
def stub_broker() -> Iterator[dramatiq.Broker]:
    """The in-process broker, as the gateway makes it (its idle consumers wait for wake-ups)."""
    broker = make_broker(None)
    yield broker
    broker.close()


@pytest.fixture
def redis_broker() -> Iterator[dramatiq.Broker]:
    """A broker on the real Redis as the gateway makes it, in a namespace of its own that is emptied afterwards."""
    require_service("Redis", "127.0.0.1", 6379)
    namespace = "w2c-test-" + uuid.uuid4().hex[:8]
    broker = make_broker(REDIS_URL, namespace=namespace)
    yield broker
    for key in broker.client.scan_iter(f"{namespace}*"):
        broker.client.delete(key)
    broker.close()
