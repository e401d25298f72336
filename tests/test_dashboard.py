"""The dashboard: its login and permission, counts and chart, the list of a status with its
pager, and the filters in its URL."""

from __future__ import annotations

import datetime as dt
import re

from django.contrib.auth import get_user_model
from django.urls import reverse

from reporting import selectors


def test_the_dashboard_needs_a_login_and_the_permission(client, db):
    response = client.get(reverse("dashboard"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
    user = get_user_model().objects.create_user("nobody", password="nobody-password")
    client.force_login(user)
    assert client.get(reverse("dashboard")).status_code == 403


def test_the_dashboard_shows_counts_chart_and_cancelled_orders(api, seeded):
    response = api.get(reverse("dashboard"))
    assert response.status_code == 200
    html = response.content.decode()
    counts = selectors.order_status_counts(strategy="live").as_dict()
    assert f'data-status="cancelled" data-count="{counts["cancelled"]}"' in html
    first = next(iter(selectors.order_iter_by_status(status="cancelled", strategy="live")))
    assert f'data-order="{first.order_id}"' in html
    assert 'id="freshness"' in html
    # The pager's link leads to the rows that follow the table's last one, and back.
    expected = [r.order_id for r in selectors.order_iter_by_status(status="cancelled", strategy="live")]
    assert f"1\u201325 of {counts['cancelled']}" in html
    link = re.search(r'href="\?after=(\d+)&amp;trail=0&amp;page=2" rel="next"', html)
    assert link is not None, "no next-page link"
    second = api.get(
        reverse("dashboard"), {"after": link.group(1), "trail": "0", "page": "2"}
    ).content.decode()
    assert [int(x) for x in re.findall(r'data-order="(\d+)"', second)] == expected[25:50]
    assert f"26\u201350 of {counts['cancelled']}" in second
    assert 'href="?" rel="prev"' in second, "previous leads to the first page"
    third = re.search(r'href="\?after=(\d+)&amp;trail=0,(\d+)&amp;page=3" rel="next"', second)
    assert third is not None and third.group(2) == link.group(1)
    back = api.get(
        reverse("dashboard"), {"after": third.group(1), "trail": f"0,{link.group(1)}", "page": "3"}
    )
    assert f'href="?after={link.group(1)}&amp;trail=0&amp;page=2" rel="prev"' in back.content.decode()
    assert api.get(reverse("dashboard"), {"trail": "1,x"}).status_code == 400
    assert 'data-status="none"' not in html, "no legend or bar for none while no order lacks a status"
    assert api.get(reverse("dashboard"), {"after": "nope"}).status_code == 400


def test_the_dashboard_refuses_odd_numbers_with_a_400_page(api, seeded):
    for after in ("%C2%B2", "%D9%A3", "9" * 5000):
        assert api.get(f"{reverse('dashboard')}?after={after}").status_code == 400


def test_the_dashboard_links_every_listed_order_to_its_page(api, seeded):
    html = api.get(reverse("dashboard")).content.decode()
    first = next(iter(selectors.order_iter_by_status(status="cancelled", strategy="live")))
    assert f'href="/orders/{first.order_id}"' in html


def test_the_dashboard_filters_by_status_and_days_in_its_url(api, seeded):
    live_pending = [r.order_id for r in selectors.order_iter_by_status(status="pending", strategy="live")]
    html = api.get(reverse("dashboard"), {"status": "pending"}).content.decode()
    assert [int(x) for x in re.findall(r'data-order="(\d+)"', html)] == live_pending[:25]
    assert "Pending orders, most recent first" in html

    first, last = dt.date(2025, 12, 1), dt.date(2025, 12, 20)
    ranged = api.get(reverse("dashboard"), {"from": first.isoformat(), "to": last.isoformat()})
    assert ranged.status_code == 200
    body = ranged.content.decode()
    # Counts: the orders created on those days, by latest status, as the live history says.
    daily = selectors.order_daily_counts(days=20, strategy="live", until=last)
    expected = {name: sum(daily.series[name]) for name in ("pending", "complete", "cancelled")}
    for name, n in expected.items():
        assert f'data-status="{name}" data-count="{n}"' in body, name
    assert len(re.findall(r'class="col[^"]*" data-day=', body)) == 20
    listed = [int(x) for x in re.findall(r'data-order="(\d+)"', body)]
    became = {
        r.order_id
        for r in selectors.order_iter_by_status(status="cancelled", strategy="live")
        if first <= r.status_created.astimezone(dt.UTC).date() <= last
    }
    assert listed and set(listed) <= became, "the list keeps to the days"
    next_link = re.search(r'href="(\?[^"]*)" rel="next"', body)
    if next_link:
        assert "from=2025-12-01&amp;to=2025-12-20" in next_link.group(1), "the pager keeps the filters"

    for params in (
        {"status": "failed"},
        {"from": "2025-12-01"},
        {"from": "2025-12-20", "to": "2025-12-01"},
        {"from": "2025-13-01", "to": "2025-12-20"},
        {"from": "2025-12-01", "to": "2027-12-31"},
        {"from": "\u00b2025-12-01", "to": "2025-12-20"},
    ):
        response = api.get(reverse("dashboard"), params)
        assert response.status_code == 400, params
        assert "invalid" in response.content.decode()


def test_the_dashboard_pager_goes_on_past_its_trail_and_refuses_odd_ends(api, seeded):
    rows = list(selectors.order_iter_by_status(status="cancelled", strategy="live"))
    after = rows[24].status_id
    long_trail = ",".join(["0"] + [str(1000 + i) for i in range(199)])  # 200 pages behind
    html = api.get(
        reverse("dashboard"), {"after": after, "trail": long_trail, "page": "201"}
    ).content.decode()
    assert "5,001\u20135,025" in html, "the position comes from the page number"
    link = re.search(r'href="\?after=\d+&amp;trail=([\d,]+)&amp;page=202" rel="next"', html)
    assert link is not None, "a next page after 200"
    assert len(link.group(1).split(",")) == 200, "the trail keeps the last 200 pages"
    for params in (
        {"from": "9999-12-31", "to": "9999-12-31"},
        {"from": "0001-01-01", "to": "0001-01-02"},
        {"from": "2025-12-01", "to": "2025-12-02", "after": str(rows[0].status_id)},
    ):
        assert api.get(reverse("dashboard"), params).status_code == 400, params
