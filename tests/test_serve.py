"""`make serve` as a newcomer runs it: gunicorn, static files, the admin login, the dashboard."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from examples.shop import services as shop_services
from reporting import services
from tests.helpers import ARTIFACTS, chromium_browser, subprocess_env

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(url: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.3)
    raise AssertionError(f"{url} never answered")


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_make_serve_runs_gunicorn_with_a_styled_admin_login_and_the_dashboard(tmp_path):
    shop_services.orders_seed(orders=500, seed=3, until=None)
    services.views_refresh()
    port = free_port()
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen(
        ["make", "--no-print-directory", "serve", f"PORT={port}"],
        cwd=ROOT,
        env=subprocess_env(),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{base}/healthz")
        server = urllib.request.urlopen(f"{base}/healthz", timeout=5).headers["Server"]
        assert server.startswith("gunicorn"), f"not the development server: {server}"
        css = urllib.request.urlopen(f"{base}/static/admin/css/base.css", timeout=5)
        assert css.status == 200 and "text/css" in css.headers["Content-Type"]
        with chromium_browser() as browser:
            from selenium.webdriver.common.by import By
            from selenium.webdriver.support.ui import WebDriverWait

            browser.get(f"{base}/admin/login/?next=/")
            header = browser.find_element(By.ID, "header")
            # The admin's stylesheet applied: its header is dark, not the browser's default.
            background = header.value_of_css_property("background-color")
            assert background not in ("rgba(0, 0, 0, 0)", "transparent"), background
            ARTIFACTS.mkdir(exist_ok=True)
            browser.save_screenshot(str(ARTIFACTS / "admin-login.png"))
            browser.find_element(By.ID, "id_username").send_keys("demo")
            browser.find_element(By.ID, "id_password").send_keys("demo-reports")
            browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
            deadline = time.monotonic() + 30
            while browser.title != "Orders · reporting" and time.monotonic() < deadline:
                time.sleep(0.2)
            assert browser.title == "Orders · reporting"
            browser.find_element(By.LINK_TEXT, "refresh log").click()
            WebDriverWait(browser, 30).until(lambda b: "refresh run" in b.title.lower())
            assert browser.find_elements(By.CSS_SELECTOR, "#result_list tbody tr"), "the log is readable"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(60)
        log.close()
