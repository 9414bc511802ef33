"""``/docs`` works without internet: its page names no other host and everything it loads comes from the app."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from dramatiq.brokers.stub import StubBroker
from fastapi.testclient import TestClient

from gateway.api import create_api
from gateway.app import build_gateway
from tests.helpers import settings_for


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    """The API of a fresh gateway."""
    broker = StubBroker()
    try:
        with TestClient(create_api(build_gateway(settings_for(tmp_path), broker=broker))) as api:
            yield api
    finally:
        broker.close()


def test_docs_names_no_other_host_and_loads_its_files_from_the_app(client: TestClient) -> None:
    """The /docs page links only paths of the app (no CDN), and each script, style and icon it names loads."""
    page = client.get("/docs")
    assert 200 == page.status_code
    assert "://" not in page.text
    linked = re.findall(r'(?:src|href)="([^"]+)"', page.text) + re.findall(r"url: '([^']+)'", page.text)
    assert {"/docs/assets/swagger-ui-bundle.js", "/docs/assets/swagger-ui.css", "/openapi.json"} <= set(linked)
    for url in linked:
        assert "" == urlsplit(url).netloc, url
        assert 200 == client.get(url).status_code, url


def test_redoc_is_not_served(client: TestClient) -> None:
    """/redoc, which would load its script from a CDN, is off."""
    assert 404 == client.get("/redoc").status_code
