"""One order: its history and its status by every strategy, on the API and on its page."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.db import connection
from django.urls import reverse

from examples.shop.models import Order, OrderStatus
from reporting import services
from tests.factories import EPOCH, orders_create, statuses_create


@pytest.mark.django_db(transaction=True)
def test_an_order_with_its_history_and_its_status_by_every_strategy(client, reader):
    client.force_login(reader)
    at = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)
    order = Order.objects.create(created=at)
    pending = OrderStatus.objects.create(order=order, created=at, status="pending")
    complete = OrderStatus.objects.create(order=order, created=at + dt.timedelta(hours=2), status="complete")
    services.views_refresh()
    # After the refresh: a refund, a tie at the same time that wins by id, and a backfill.
    refund = OrderStatus.objects.create(order=order, created=at + dt.timedelta(days=1), status="cancelled")
    tie = OrderStatus.objects.create(order=order, created=at + dt.timedelta(days=1), status="complete")
    backfill = OrderStatus.objects.create(order=order, created=at + dt.timedelta(hours=1), status="cancelled")

    body = client.get(reverse("api-order", args=[order.pk])).json()
    assert [h["status_id"] for h in body["history"]] == [
        pending.pk,
        backfill.pk,
        complete.pk,
        refund.pk,
        tie.pk,
    ]
    assert [h["duration_seconds"] for h in body["history"][:4]] == [3600, 3600, 22 * 3600, 0]
    assert [h["latest"] for h in body["history"]] == [False, False, False, False, True]
    assert body["status"]["live"]["status_id"] == tie.pk
    assert body["status"]["realtime"]["status_id"] == tie.pk, "exact: the changes since the refresh"
    assert body["status"]["snapshot"]["status_id"] == complete.pk, "as of the refresh"
    assert body["status"]["snapshot"]["freshness"]["changes_since_view"] == 3

    page = client.get(reverse("order", args=[order.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    for status_id in (pending.pk, backfill.pk, complete.pk, refund.pk, tie.pk):
        assert f'data-status-id="{status_id}"' in html
    assert 'data-strategy="realtime" data-status="complete"' in html
    assert 'data-strategy="snapshot" data-status="complete"' in html

    bare = Order.objects.create(created=at)
    assert client.get(reverse("api-order", args=[bare.pk])).json()["status"]["live"]["status"] is None
    assert "No status rows" in client.get(reverse("order", args=[bare.pk])).content.decode()


def test_an_order_with_a_huge_history_shows_its_latest_rows_and_says_how_many_are_left_out(api, settings):
    """300,000 status rows made the API answer 44 MB and the page 98 MB of HTML."""
    (order_id,) = orders_create(1)
    with connection.cursor() as cursor:
        # pending for 100 rows, complete once, then cancelled for the rest: the final
        # run is far longer than the rows shown, and status_since is its first row.
        cursor.execute(
            "INSERT INTO reporting_example_orderstatus (order_id, created, status) "
            "SELECT %s, %s + i * interval '1 second', "
            "CASE WHEN i < 100 THEN 'pending' WHEN i = 100 THEN 'complete' ELSE 'cancelled' END "
            "FROM generate_series(0, 299999) AS i",
            [order_id, EPOCH],
        )
        cursor.execute(
            "SELECT id FROM reporting_example_orderstatus WHERE order_id = %s ORDER BY created DESC, id DESC",
            [order_id],
        )
        ids = [row[0] for row in cursor.fetchall()][::-1]
    since = (EPOCH + dt.timedelta(seconds=101)).isoformat()

    response = api.get(f"/api/orders/{order_id}")
    assert response.status_code == 200
    assert len(response.content) < 1_000_000
    body = response.json()
    assert (body["history_count"], body["history_truncated"], len(body["history"])) == (300_000, True, 1000)
    assert body["created"] == EPOCH.isoformat(), "the order's creation, not its latest row's"
    assert [h["status_id"] for h in body["history"]] == ids[-1000:], "the latest rows, oldest first"
    assert [h["latest"] for h in body["history"]] == [False] * 999 + [True]
    assert body["history"][0]["duration_seconds"] == 1
    assert body["status"]["live"]["status_id"] == ids[-1]
    assert body["status"]["live"]["status_since"] == since, "from the whole final run, not the rows shown"
    assert body["status"]["realtime"]["status_since"] == since

    small = api.get(f"/api/orders/{order_id}", {"limit": 3}).json()
    assert [h["status_id"] for h in small["history"]] == ids[-3:]
    assert (small["history_count"], small["history_truncated"]) == (300_000, True)
    for bad in ("0", "10001", "-1", "1.5", "abc", "\u00b2"):
        refused = api.get(f"/api/orders/{order_id}", {"limit": bad})
        assert refused.status_code == 400, bad
        assert "limit" in refused.json()["error"] and "1 to 10000" in refused.json()["error"]

    settings.REPORTING_ORDER_HISTORY_ROWS = 50
    page = api.get(reverse("order", args=[order_id]))
    assert page.status_code == 200
    html = page.content.decode()
    assert len(html) < 200_000
    assert re.findall(r'data-status-id="(\d+)"', html) == [str(i) for i in ids[-50:]]
    assert "The latest 50 of 300,000 rows; 299,950 earlier rows not shown." in html

    (short,) = orders_create(1)
    statuses_create([(short, EPOCH, "pending"), (short, EPOCH, "complete")])
    body = api.get(f"/api/orders/{short}").json()
    assert (body["history_count"], body["history_truncated"], len(body["history"])) == (2, False, 2)
    assert "earlier row" not in api.get(reverse("order", args=[short])).content.decode()


@pytest.mark.parametrize("order_id", ["987654321", "9" * 30, "0"])
def test_an_unknown_order_is_a_404(api, seeded, order_id):
    response = api.get(f"/api/orders/{order_id}")
    assert response.status_code == 404
    assert response.json()["error"].startswith("unknown order")
    assert api.get(f"/orders/{order_id}").status_code == 404
