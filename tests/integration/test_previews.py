"""Template previews: every email kind in every locale, rendered with sample data for a browser."""

from __future__ import annotations

from pathlib import Path

import dramatiq
import pytest
from fastapi.testclient import TestClient

from gateway.api import create_api
from gateway.app import build_gateway
from tests.helpers import settings_for

KINDS = ["state_changed", "teammate_reply", "ticket_created"]


@pytest.fixture
def browser(tmp_path: Path, stub_broker: dramatiq.Broker) -> TestClient:
    """The API as a browser sees it: no API key."""
    return TestClient(create_api(build_gateway(settings_for(tmp_path), broker=stub_broker)))


@pytest.mark.parametrize("locale", ["en", "de", "ar", "zh-Hans"])
@pytest.mark.parametrize("kind", KINDS)
def test_preview_shows_each_email_as_html(browser: TestClient, kind: str, locale: str) -> None:
    """Each kind in each locale previews as an HTML page in that language, without a key."""
    page = browser.get(f"/v1/previews/{kind}", params={"locale": locale})
    assert (200, locale) == (page.status_code, page.headers["content-language"])
    assert page.headers["content-type"].startswith("text/html")
    assert f'<html lang="{locale}" dir="{"rtl" if locale == "ar" else "ltr"}">' in page.text and "T-1042" in page.text


def test_preview_index_links_every_kind_and_locale(browser: TestClient) -> None:
    """The index links every kind in every locale, HTML and text."""
    page = browser.get("/v1/previews").text
    for kind in KINDS:
        assert f'href="/v1/previews/{kind}?locale=de"' in page
        assert f'href="/v1/previews/{kind}?locale=en&amp;part=text"' in page


def test_preview_text_part_and_unknown_kind(browser: TestClient) -> None:
    """The text part starts with the subject; an unknown kind is a 404 naming the known ones."""
    text = browser.get("/v1/previews/ticket_created", params={"locale": "sw", "part": "text"})
    assert text.text.startswith("Subject: [#T-1042] Printer prints blank pages")
    assert "en" == text.headers["content-language"]
    missing = browser.get("/v1/previews/newsletter")
    assert 404 == missing.status_code
    assert "no email kind 'newsletter'; known: state_changed, teammate_reply, ticket_created" == missing.json()["error"]
