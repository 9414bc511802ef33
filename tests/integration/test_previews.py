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


LOCALES = ["ar", "de", "en", "es", "fr", "it", "ja", "nl", "pt_BR", "zh_Hans"]


def test_the_gallery_shows_every_kind_in_every_language(browser: TestClient) -> None:
    """The gallery has one section per kind x language: the HTML in a frame beside the subject and text."""
    page = browser.get("/v1/previews").text
    assert page.startswith("<!DOCTYPE html>") and "<style>" in page
    for kind in KINDS:
        for locale in LOCALES:
            assert f'id="{kind}-{locale}"' in page
            assert f'src="/v1/previews/{kind}?locale={locale}"' in page
        assert f'href="/v1/previews/{kind}?locale=de"' in page
        assert f'href="/v1/previews/{kind}?locale=en&amp;part=text"' in page
    assert 30 == page.count("<iframe")
    assert "Arabic · العربية" in page and "Japanese · 日本語" in page
    assert "The conversation so far (newest first)" in page, "the text part shows the sample's long thread"


def test_the_gallery_filters_and_switches_width_and_theme(browser: TestClient) -> None:
    """Kind and language narrow the gallery (the language negotiated); phone width and dark mode are views."""
    page = browser.get("/v1/previews", params={"locale": "ar-EG", "width": "phone", "theme": "dark"}).text
    assert 3 == page.count("<iframe") and 3 == page.count('width="375"')
    assert 'src="/v1/previews/teammate_reply?locale=ar&amp;theme=dark"' in page
    assert 'aria-current="true">ar<' in page and 'aria-current="true">phone<' in page
    one = browser.get("/v1/previews", params={"kind": "state_changed", "locale": "ja"}).text
    assert 1 == one.count("<iframe") and 'id="state_changed-ja"' in one
    assert 404 == browser.get("/v1/previews", params={"kind": "newsletter"}).status_code


def test_dark_mode_applies_the_emails_own_dark_rules(browser: TestClient) -> None:
    """theme=dark turns the email's prefers-color-scheme: dark rules on, as a dark-mode client does."""
    light = browser.get("/v1/previews/teammate_reply", params={"locale": "de"}).text
    dark = browser.get("/v1/previews/teammate_reply", params={"locale": "de", "theme": "dark"}).text
    assert "@media (prefers-color-scheme: dark)" in light and "@media all" not in light
    assert "@media all" in dark and ".w2c-history" in dark


def test_preview_text_part_and_unknown_kind(browser: TestClient) -> None:
    """The text part starts with the subject; an unknown kind is a 404 naming the known ones."""
    text = browser.get("/v1/previews/ticket_created", params={"locale": "sw", "part": "text"})
    assert text.text.startswith("Subject: [#T-1042] Printer prints blank pages")
    assert "en" == text.headers["content-language"]
    missing = browser.get("/v1/previews/newsletter")
    assert 404 == missing.status_code
    assert "no email kind 'newsletter'; known: state_changed, teammate_reply, ticket_created" == missing.json()["error"]
