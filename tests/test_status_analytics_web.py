"""Orders stuck in pending, the status changes and the times to a final status, and since when an
order is in its status: exact on the API, the dashboard and the order page."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from examples.shop import services as shop_services
from examples.shop.models import Order, OrderStatus
from reporting import selectors, services
from tests.brute_force import brute_force_transition_times, brute_force_transitions
from tests.factories import all_status_rows


@pytest.mark.django_db(transaction=True)
def test_orders_stuck_in_pending_are_counted_exactly(client, reader):
    client.force_login(reader)
    now = timezone.now()
    ago = lambda hours: now - dt.timedelta(hours=hours)  # noqa: E731

    def order(*history):
        o = Order.objects.create(created=history[0][0])
        return o, [OrderStatus.objects.create(order=o, created=at, status=s) for at, s in history]

    stuck_long, _ = order((ago(72), "pending"))
    stuck_tie, _ = order((ago(48), "complete"))
    OrderStatus.objects.create(
        order=stuck_tie, created=ago(48), status="pending"
    )  # same time, higher id: latest
    recent, _ = order((ago(2), "pending"))
    paid, _ = order((ago(72), "pending"), (ago(70), "complete"))
    backfilled, _ = order((ago(5), "complete"))
    OrderStatus.objects.create(order=backfilled, created=ago(96), status="pending")  # older: not the latest
    Order.objects.create(created=ago(100))  # no status at all: not pending
    # Pending for 60 hours; a second pending row an hour ago does not make it newly pending.
    repeated, _ = order((ago(60), "pending"), (ago(1), "pending"))
    services.views_refresh()

    stuck = selectors.orders_stuck_pending(older_than=dt.timedelta(hours=24))
    assert stuck.count == 3
    assert [r.order_id for r in stuck.oldest] == [stuck_long.pk, repeated.pk, stuck_tie.pk], (
        "the longest stuck first, by when they entered pending"
    )
    assert selectors.orders_stuck_pending(older_than=dt.timedelta(hours=1)).count == 4

    # After the refresh, exact: one is paid, another cancelled and pending again long ago.
    shop_services.order_status_record(order_id=stuck_long.pk, status="complete")
    OrderStatus.objects.create(order=paid, created=ago(30), status="pending")
    body = client.get(reverse("api-orders-stuck"), {"hours": "24"}).json()
    oldest = [o["order_id"] for o in body["oldest"]]
    assert (body["count"], oldest) == (3, [repeated.pk, stuck_tie.pk, paid.pk])
    assert dt.datetime.fromisoformat(body["oldest"][0]["pending_since"]) == ago(60), "when it entered pending"
    assert body["freshness"]["strategy"] == "realtime"
    assert client.get(reverse("api-orders-stuck"), {"hours": "0"}).status_code == 400
    assert client.get(reverse("api-orders-stuck"), {"hours": "\u00b2"}).status_code == 400
    html = client.get(reverse("dashboard")).content.decode()
    assert 'id="stuck" class="wide" data-count="3"' in html
    assert recent.pk not in (o["order_id"] for o in body["oldest"])


@pytest.mark.django_db(transaction=True)
def test_status_analytics_answer_exactly_on_the_api_and_the_dashboard(client, reader):
    client.force_login(reader)
    now = timezone.now()
    ago = lambda hours: now - dt.timedelta(hours=hours)  # noqa: E731
    paid, refunded, failed = (Order.objects.create(created=ago(10)) for _ in range(3))
    for order, history in (
        (paid, [(10, "pending"), (9, "complete")]),
        (refunded, [(10, "pending"), (8, "complete"), (1, "cancelled")]),
        (failed, [(10, "pending")]),
    ):
        for hours, status in history:
            OrderStatus.objects.create(order=order, created=ago(hours), status=status)
    services.views_refresh()
    shop_services.order_status_record(order_id=failed.pk, status="cancelled")  # after the refresh: realtime

    rows = all_status_rows()
    expected = {kind: 0 for kind in selectors.transition_kinds()}
    for (_, before, after), n in brute_force_transitions(rows).items():
        expected[(before, after)] += n
    body = client.get(reverse("api-transitions-daily")).json()
    assert len(body["days"]) == 30 and body["freshness"]["strategy"] == "realtime"
    assert {(t["from"], t["to"]): t["total"] for t in body["transitions"]} == expected
    assert expected[("pending", "cancelled")] == 1, "the change after the refresh counts"
    today = now.astimezone(dt.UTC).date().isoformat()
    one_day = client.get(reverse("api-transitions-daily"), {"from": today, "to": today}).json()
    assert one_day["days"] == [today]

    times = client.get(reverse("api-transition-times"), {"weeks": "2"}).json()
    assert len(times["weeks"]) == 2
    week = now.astimezone(dt.UTC).date()
    week -= dt.timedelta(days=week.weekday())
    expected_times = brute_force_transition_times(rows)
    for status in ("complete", "cancelled"):
        this_week = times[status][-1]
        n, median, p90 = expected_times.get((week, status), (0, None, None))
        assert this_week["transitions"] == n
        # PostgreSQL and Python round an interpolated half microsecond differently: 1 µs
        # apart at most, which in float seconds can come out a hair over 1e-6.
        for key, value in (("median_seconds", median), ("p90_seconds", p90)):
            if value is None:
                assert this_week[key] is None
            else:
                assert this_week[key] == pytest.approx(value.total_seconds(), abs=1.5e-6)

    for name, params in (
        ("api-transitions-daily", {"from": today}),
        ("api-transitions-daily", {"from": today, "to": "2000-01-01"}),
        ("api-transitions-daily", {"from": "2020-01-01", "to": "2022-01-01"}),
        ("api-transitions-daily", {"to": "yesterday", "from": today}),
        ("api-transitions-daily", {"days": "7"}),
        ("api-transition-times", {"weeks": "0"}),
        ("api-transition-times", {"weeks": "521"}),
        ("api-transition-times", {"weeks": "\u0663"}),
        ("api-transition-times", {"strategy": "fast"}),
    ):
        response = client.get(reverse(name), params)
        assert response.status_code == 400, (name, params)
        assert response.json()["error"], (name, params)

    html = client.get(reverse("dashboard")).content.decode()
    panel = html[html.index('id="transitions"') : html.index('id="times"')]
    paid_row = re.search(r'data-transition="pending-complete">.*?<td class="num">(\d+)</td>', panel)
    assert paid_row is not None and int(paid_row.group(1)) == expected[("pending", "complete")]
    assert f'data-week="{week.isoformat()}"' in html


@pytest.mark.django_db(transaction=True)
def test_since_on_the_dashboard_the_order_page_and_the_api_is_when_the_status_began(client, reader):
    """A second cancelled row moves the latest row's time, not when the order was cancelled."""
    client.force_login(reader)
    now = timezone.now().replace(microsecond=0)
    cancelled_at, again_at = now - dt.timedelta(days=20), now - dt.timedelta(hours=1)
    order = Order.objects.create(created=cancelled_at - dt.timedelta(hours=1))
    for at, status in ((cancelled_at - dt.timedelta(hours=1), "pending"), (cancelled_at, "cancelled")):
        OrderStatus.objects.create(order=order, created=at, status=status)
    services.views_refresh()
    OrderStatus.objects.create(order=order, created=again_at, status="cancelled")
    assert services.overlay_fold().outcome == "ok"
    # Pages write a date and its time in two unbreakable spans (they wrap at the space on phones).
    shown, latest = (
        f'{at:%Y-%m-%d}</span> <span class="nw">{at:%H:%M:%S}' for at in (cancelled_at, again_at)
    )

    html = client.get(reverse("dashboard"), {"status": "cancelled"}).content.decode()
    row = html[html.index(f'data-order="{order.pk}"') :].split("</tr>", 1)[0]
    assert shown in row and latest not in row, row
    page = client.get(reverse("order", args=[order.pk])).content.decode()
    now_table = page[page.index('id="now"') :].split("</table>", 1)[0]
    assert now_table.count(shown) == 3, "every strategy says since when"
    assert latest not in now_table
    body = client.get(reverse("api-orders"), {"status": "cancelled"}).json()["orders"]
    assert [(o["status_created"], o["status_since"]) for o in body] == [
        (again_at.isoformat(), cancelled_at.isoformat())
    ]
    detail = client.get(reverse("api-order", args=[order.pk])).json()["status"]
    assert {s["status_since"] for s in detail.values()} == {cancelled_at.isoformat()}
    assert detail["snapshot"]["status_created"] == cancelled_at.isoformat(), "as of the refresh"
