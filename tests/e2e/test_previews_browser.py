"""The email gallery in headless Chromium: screenshots in three languages, Arabic right to left."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dramatiq
import pytest

from gateway.app import build_gateway
from gateway.run import Parts
from tests.helpers import settings_for

#: Flags that keep Chromium off the network (closed here) and quick to start.
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--window-size=1280,1000",
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


@pytest.mark.parametrize(
    ("locale", "direction", "heading", "view"),
    [
        ("en", "ltr", "The conversation so far (newest first)", {}),
        ("de", "ltr", "Der bisherige Verlauf (neueste zuerst)", {"width": "phone"}),
        ("ar", "rtl", "المحادثة حتى الآن (الأحدث أولًا)", {"width": "phone", "theme": "dark"}),
    ],
)
def test_the_gallery_in_a_browser(
    served: Parts, browser: Any, tmp_path: Path, locale: str, direction: str, heading: str, view: dict[str, str],
) -> None:
    """Each language's gallery loads, its reply email frame renders with the right lang/dir and the history,
    and a screenshot of the page and of the frame is taken."""
    from urllib.parse import urlencode

    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as shows
    from selenium.webdriver.support.ui import WebDriverWait

    url = f"http://127.0.0.1:{served.api_port}/v1/previews?" + urlencode({"locale": locale, **view})
    browser.get(url)
    wait = WebDriverWait(browser, 15)
    frame = wait.until(shows.presence_of_element_located((By.CSS_SELECTOR, "#teammate_reply-" + locale + " iframe")))
    browser.execute_script("arguments[0].scrollIntoView()", frame)
    inner = browser.execute_script("return arguments[0].clientWidth", frame)
    assert (375 if view.get("width") == "phone" else 660) == inner
    browser.save_screenshot(str(tmp_path / f"gallery-{locale}.png"))
    browser.switch_to.frame(frame)
    wait.until(shows.text_to_be_present_in_element((By.TAG_NAME, "body"), heading))
    root = browser.find_element(By.TAG_NAME, "html")
    assert (locale, direction) == (root.get_attribute("lang"), root.get_attribute("dir"))
    body = browser.find_element(By.TAG_NAME, "body")
    if view.get("theme") == "dark":
        assert "rgba(22, 24, 29, 1)" == body.value_of_css_property("background-color")
    browser.save_screenshot(str(tmp_path / f"gallery-{locale}-frame.png"))
    browser.switch_to.default_content()
    assert (tmp_path / f"gallery-{locale}.png").stat().st_size > 10_000
