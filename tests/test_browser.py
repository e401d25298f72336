"""The dashboard in a real browser: Debian's headless Chromium, driven by Selenium."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from reporting import selectors, services

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"


def _browser_or_skip() -> tuple[str, str]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if chromium and driver:
        return chromium, driver
    message = (
        "needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver; .ci/run does)"
    )
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@contextlib.contextmanager
def chromium_browser(width: int = 1400, height: int = 1100) -> Iterator[Any]:
    """Debian's headless Chromium through Selenium, with a profile of its own; skipped without it."""
    chromium, driver_path = _browser_or_skip()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-dev-shm-usage",
        f"--window-size={width},{height}",
        "--no-first-run",
    ):
        options.add_argument(flag)
    profile = tempfile.mkdtemp(prefix="chromium-")
    options.add_argument(f"--user-data-dir={profile}")
    browser = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    try:
        yield browser
    finally:
        browser.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_dashboard_in_headless_chromium(live_server):
    from selenium.webdriver.common.by import By

    services.orders_seed(orders=3000, seed=8, until=timezone.now())
    services.views_refresh()
    services.order_status_record(order_id=1, status="cancelled")  # one change since the refresh
    services.reports_user_ensure(username="viewer", password="viewer-password-1")
    client = Client()
    client.force_login(get_user_model().objects.get(username="viewer"))
    session = client.cookies["sessionid"].value

    with chromium_browser() as browser:
        browser.get(f"{live_server.url}/admin/login/")
        browser.add_cookie({"name": "sessionid", "value": session, "path": "/"})
        browser.get(f"{live_server.url}/")
        assert browser.title == "Orders · reporting"

        counts = selectors.order_status_counts(strategy="live").as_dict()
        bars = {
            g.get_attribute("data-status"): int(g.get_attribute("data-count") or "-1")
            for g in browser.find_elements(By.CSS_SELECTOR, "#counts g[data-status]")
        }
        assert bars == counts
        assert "3,000" in browser.find_element(By.CSS_SELECTOR, "#counts .total").text
        assert f"{counts['complete']:,}" in browser.find_element(By.ID, "counts").text

        columns = browser.find_elements(By.CSS_SELECTOR, "#daily g[data-day]")
        assert len(columns) == 30
        daily = selectors.order_daily_counts(days=30, strategy="live")
        totals = [sum(series[i] for series in daily.series.values()) for i in range(30)]
        assert [int(c.get_attribute("data-total") or "-1") for c in columns] == totals
        assert browser.find_elements(By.CSS_SELECTOR, "#daily rect"), "the chart draws columns"

        expected = [r.order_id for r in selectors.order_iter_by_status(status="cancelled", strategy="live")]
        rows = browser.find_elements(By.CSS_SELECTOR, "#cancelled tbody tr[data-order]")
        assert [int(r.get_attribute("data-order") or "-1") for r in rows] == expected[:25]
        assert expected[0] == 1, "the change after the refresh shows: realtime reads"

        banner = browser.find_element(By.ID, "freshness").text
        assert re.search(r"Views as of \d\d:\d\d:\d\d .* s ago, 1 change since", banner), banner

        ARTIFACTS.mkdir(exist_ok=True)
        screenshot = ARTIFACTS / "dashboard.png"
        browser.save_screenshot(str(screenshot))
        assert screenshot.stat().st_size > 10_000
