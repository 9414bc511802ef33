"""The demo Messenger in headless Chromium: a ticket appears live, opening it sends a receipt, an email reply shows."""

from __future__ import annotations

import os
import shutil
import smtplib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dramatiq
import httpx
import pytest

from gateway.app import build_gateway
from gateway.run import Parts
from tests.helpers import API_KEY, gmail_reply, parse, settings_for, wait_for
from tests.messenger import created

CUSTOMER = "ada@customer.example.test"
#: Flags that keep Chromium off the network (closed here) and quick to start.
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--window-size=1200,800",
)


def _require_chromium() -> tuple[str, str]:
    browser, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if browser and driver:
        return browser, driver
    message = "Debian's chromium and chromium-driver are not installed"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message + " (required under CI: .ci/run installs them)")
    pytest.skip(message)


@pytest.fixture
def browser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Headless Chromium driven by Selenium through Debian's chromedriver (nothing downloaded)."""
    binary, driver_path = _require_chromium()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    monkeypatch.setenv("SE_OFFLINE", "true")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def served(tmp_path: Path, stub_broker: dramatiq.Broker) -> Iterator[Parts]:
    """The whole gateway on loopback."""
    with Parts(build_gateway(settings_for(tmp_path), broker=stub_broker), sweep_interval=0.5) as parts:
        yield parts


def test_the_whole_story_in_the_demo_messenger(served: Parts, browser: Any, tmp_path: Path) -> None:
    """A ticket created by the help desk appears live; opening it marks it seen; the customer's email reply shows."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as shows
    from selenium.webdriver.support.ui import WebDriverWait

    url = f"http://127.0.0.1:{served.api_port}"
    desk = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=10)
    token = desk.post("/v1/messenger-tokens", json={"customer_id": "cust-7"}).json()["token"]
    wait = WebDriverWait(browser, 15)

    browser.get(f"{url}/demo#token={token}")
    wait.until(shows.text_to_be_present_in_element_attribute((By.ID, "status"), "data-state", "live"))
    event = created("T-100", customer="cust-7", by="teammate", title="Printer prints blank pages")
    event["customer"]["email"] = CUSTOMER
    assert 202 == desk.post("/v1/events", json=event).status_code

    row = wait.until(shows.presence_of_element_located((By.CSS_SELECTOR, '#tickets li[data-ticket-id="T-100"]')))
    assert "1" == row.find_element(By.CLASS_NAME, "unseen").text, "the new ticket arrives live, unseen"
    row.click()
    wait.until(shows.text_to_be_present_in_element((By.ID, "pill-title"), "Printer prints blank pages"))
    assert "#T-100" == browser.find_element(By.ID, "pill-id").text
    wait_for(lambda: desk.get("/v1/customers/cust-7/recent-tickets").json()["tickets"][0]["unseen_count"] == 0,
             what="the seen receipt the open thread sends")
    wait.until(lambda b: not b.find_elements(By.CSS_SELECTOR, '#tickets li[data-ticket-id="T-100"] .unseen'))

    email = wait_for(lambda: next((e for e in desk.get("/v1/outbox").json()["emails"] if e["status"] == "sent"), None),
                     what="the ticket email")
    original = parse(email["raw"])
    with smtplib.SMTP("127.0.0.1", served.smtp_port) as smtp:
        smtp.sendmail(CUSTOMER, [original["Reply-To"]], gmail_reply(original, sender=CUSTOMER, text="Works now!"))
    answer = wait.until(shows.presence_of_element_located((By.CSS_SELECTOR, '#entries li[data-kind="customer_reply"]')))
    assert answer.text.startswith("Works now!")
    assert "by email" in answer.text
    browser.save_screenshot(str(tmp_path / "messenger.png"))
    desk.close()
