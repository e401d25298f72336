"""The dashboard in a real browser: Debian's headless Chromium, driven by Selenium."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from examples.shop import services as shop_services
from reporting import selectors, services
from tests.helpers import ARTIFACTS, chromium_browser


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_dashboard_in_headless_chromium(live_server):
    from selenium.webdriver.common.by import By

    shop_services.orders_seed(orders=3000, seed=8, until=timezone.now())
    services.views_refresh()
    shop_services.order_status_record(order_id=1, status="cancelled")  # one change since the refresh
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
            row.get_attribute("data-status"): int(row.get_attribute("data-count") or "-1")
            for row in browser.find_elements(By.CSS_SELECTOR, "#counts .bar-row[data-status]")
        }
        assert bars == {status: n for status, n in counts.items() if status != "none" or n}
        assert "3,000" in browser.find_element(By.CSS_SELECTOR, "#counts .total").text
        assert f"{counts['complete']:,}" in browser.find_element(By.ID, "counts").text

        columns = browser.find_elements(By.CSS_SELECTOR, "#daily .col[data-day]")
        assert len(columns) == 30
        daily = selectors.order_daily_counts(days=30, strategy="live")
        totals = [sum(series[i] for series in daily.series.values()) for i in range(30)]
        assert [int(c.get_attribute("data-total") or "-1") for c in columns] == totals
        assert browser.find_elements(By.CSS_SELECTOR, "#daily .seg"), "the chart draws columns"
        assert "partial" in (columns[-1].get_attribute("class") or ""), "today's column is marked"
        heights = [c.size["height"] for c in browser.find_elements(By.CSS_SELECTOR, "#daily .seg")]
        assert max(heights) > 20, "segments have a visible height"

        expected = [r.order_id for r in selectors.order_iter_by_status(status="cancelled", strategy="live")]
        rows = browser.find_elements(By.CSS_SELECTOR, "#orders tbody tr[data-order]")
        assert [int(r.get_attribute("data-order") or "-1") for r in rows] == expected[:25]
        assert expected[0] == 1, "the change after the refresh shows: realtime reads"

        # Status analytics: the changes of the chart's days, and eight weeks of times.
        changes = selectors.order_transitions_daily(days=30, strategy="live").totals()
        shown = {
            row.get_attribute("data-transition"): row.find_elements(By.CSS_SELECTOR, "td.num")[0].text
            for row in browser.find_elements(By.CSS_SELECTOR, "#transitions tr[data-transition]")
        }
        assert shown["pending-complete"] == f"{changes[('pending', 'complete')]:,}"
        assert shown["complete-cancelled"] == f"{changes[('complete', 'cancelled')]:,}"
        assert int(shown["pending-complete"].replace(",", "")) > 0
        weeks = browser.find_elements(By.CSS_SELECTOR, "#times tbody tr[data-week]")
        assert len(weeks) == 8
        assert re.search(r"\d+ (s|min|h)", weeks[-2].text), weeks[-2].text

        banner = browser.find_element(By.ID, "freshness").text
        # Realtime reads include the change since the refresh: exact now, not "as of" the refresh.
        assert re.search(r"Exact now \(checked \d\d:\d\d:\d\d UTC\)\.", banner), banner
        assert "Last refresh run: refreshed." in banner, "the outcome in the admin's words"
        ARTIFACTS.mkdir(exist_ok=True)
        screenshot = ARTIFACTS / "dashboard.png"
        browser.save_screenshot(str(screenshot))
        assert screenshot.stat().st_size > 10_000


def _no_horizontal_scroll(browser: Any) -> None:
    width, viewport = browser.execute_script(
        "return [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert width <= viewport, f"the page is {width} px wide in a {viewport} px viewport"


def _smallest_text(browser: Any, selector: str) -> float:
    return browser.execute_script(
        """
        let smallest = 1000;
        for (const el of document.querySelectorAll(arguments[0] + ' *')) {
          const own = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
          if (own && el.offsetParent !== null) {
            smallest = Math.min(smallest, parseFloat(getComputedStyle(el).fontSize));
          }
        }
        return smallest;
        """,
        selector,
    )


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_dashboard_and_an_order_page_on_a_phone(live_server):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    shop_services.orders_seed(orders=2000, seed=5, until=timezone.now())
    services.views_refresh()
    services.reports_user_ensure(username="viewer", password="viewer-password-1")
    client = Client()
    client.force_login(get_user_model().objects.get(username="viewer"))
    session = client.cookies["sessionid"].value
    with chromium_browser(360, 844) as browser:
        browser.get(f"{live_server.url}/admin/login/")
        browser.add_cookie({"name": "sessionid", "value": session, "path": "/"})
        browser.get(f"{live_server.url}/")
        assert browser.title == "Orders · reporting"
        _no_horizontal_scroll(browser)
        for chart in ("#counts", "#daily", "#transitions", "#times"):
            assert _smallest_text(browser, chart) >= 11, f"text under 11 px in {chart}"
        _nothing_clipped(browser, "the dashboard on a phone")
        sections = browser.find_elements(By.CSS_SELECTOR, "main > section")
        assert len({s.location["x"] for s in sections}) == 1, "one column on a phone"
        ARTIFACTS.mkdir(exist_ok=True)
        browser.save_screenshot(str(ARTIFACTS / "dashboard-phone.png"))

        # The filters, through the form: a week of days changes the numbers.
        total = browser.find_element(By.CSS_SELECTOR, "#counts .total").text
        last = timezone.now().astimezone(dt.UTC).date()
        first = last - dt.timedelta(days=6)
        for name, value in (("from", first), ("to", last)):
            field = browser.find_element(By.NAME, name)
            browser.execute_script("arguments[0].value = arguments[1]", field, value.isoformat())
        browser.find_element(By.CSS_SELECTOR, "#filters button").click()
        # The click starts a navigation; wait for the new page, not the old one going away.
        WebDriverWait(browser, 30).until(
            lambda b: "from=" in b.current_url and b.find_elements(By.CSS_SELECTOR, "#counts .total")
        )
        week = selectors.order_daily_counts(days=7, strategy="live", until=last)
        expected = sum(sum(series) for series in week.series.values())
        filtered = browser.find_element(By.CSS_SELECTOR, "#counts .total").text
        assert filtered == f"{expected:,} orders" and filtered != total, (filtered, total)
        assert len(browser.find_elements(By.CSS_SELECTOR, "#daily .col[data-day]")) == 7
        _no_horizontal_scroll(browser)

        first = browser.find_element(By.CSS_SELECTOR, "#orders tbody tr[data-order] a")
        order_id = int(first.text.replace(",", ""))
        first.click()
        WebDriverWait(browser, 30).until(lambda b: b.title == f"Order {order_id} · reporting")
        _no_horizontal_scroll(browser)
        history = browser.find_elements(By.CSS_SELECTOR, "#history tr[data-status-id]")
        entries = selectors.order_detail(order_id=order_id).history
        assert [int(h.get_attribute("data-status-id") or "-1") for h in history] == [
            e.status_id for e in entries
        ]
        _nothing_clipped(browser, "an order's page on a phone")
        browser.save_screenshot(str(ARTIFACTS / "order-phone.png"))


# Every table cell (and count label, and legend entry) with text: its text within its own box,
# and the box within every ancestor that cuts off what overflows without letting it scroll.
# A table wider than its card scrolls inside it: a value there is reached, not cut.
CLIPPED_JS = """
const problems = [];
for (const el of document.querySelectorAll('td, th, .bar-row > span, .legend > span')) {
  const text = el.innerText.trim();
  if (!text || !el.getClientRects().length) continue;
  const box = el.getBoundingClientRect();
  if (el.scrollWidth > el.clientWidth + 1) {
    problems.push(`"${text}" overflows its box (${el.scrollWidth} > ${el.clientWidth} px)`);
    continue;
  }
  const range = document.createRange();
  range.selectNodeContents(el);
  for (const r of range.getClientRects()) {
    if (r.width && (r.left < box.left - 1 || r.right > box.right + 1)) {
      problems.push(`"${text}" runs out of its box`);
      break;
    }
  }
  for (let up = el.parentElement; up && up !== document.body; up = up.parentElement) {
    const overflow = getComputedStyle(up).overflowX;
    if (overflow === 'visible') continue;
    if (overflow === 'auto' || overflow === 'scroll') break;
    const clip = up.getBoundingClientRect();
    if (box.left < clip.left - 1 || box.right > clip.right + 1) {
      problems.push(`"${text}" is cut off by ${up.tagName.toLowerCase()}#${up.id}`);
    }
    break;
  }
}
return problems;
"""


def _nothing_clipped(browser: Any, where: str) -> None:
    browser.execute_script("document.querySelectorAll('details').forEach(d => d.open = true)")
    _no_horizontal_scroll(browser)
    problems = browser.execute_script(CLIPPED_JS)
    assert not problems, f"{where}: {problems[:10]}"


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("width", [360, 1280])
def test_no_value_is_cut_off_with_eleven_long_statuses(live_server, settings, width):
    """A support desk: eleven states, some thirty letters long; a 360 px phone and a 1280 px screen
    with a twelve-column legend and a thirty-one-column table of times."""
    from selenium.webdriver.common.by import By

    from tests.helpers import TICKET_STATES, ticket_desk

    services.reports_user_ensure(username="viewer", password="viewer-password-1")
    client = Client()
    client.force_login(get_user_model().objects.get(username="viewer"))
    session = client.cookies["sessionid"].value
    with ticket_desk(settings), chromium_browser(width, 900) as browser:
        browser.get(f"{live_server.url}/admin/login/")
        browser.add_cookie({"name": "sessionid", "value": session, "path": "/"})
        for status in ("new", "waiting_for_customer_reply"):
            browser.get(f"{live_server.url}/?status={status}")
            assert browser.title == "Tickets · reporting"
            legend = browser.find_elements(By.CSS_SELECTOR, "#daily .legend [data-status]")
            assert len(legend) == len(TICKET_STATES) + 1, "every state, and none"
            _nothing_clipped(browser, f"the dashboard at {width} px, listing {status}")
        ARTIFACTS.mkdir(exist_ok=True)
        browser.save_screenshot(str(ARTIFACTS / f"tickets-{width}.png"))
        for ticket in (1, 2, 3):
            browser.get(f"{live_server.url}/orders/{ticket}")
            assert browser.title == f"Ticket {ticket} · reporting"
            _nothing_clipped(browser, f"ticket {ticket}'s page at {width} px")
        browser.save_screenshot(str(ARTIFACTS / f"ticket-{width}.png"))
