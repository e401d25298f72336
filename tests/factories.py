"""The example shop in tests: status histories written straight into its tables, its reset, its raw
rows read back for the brute force, and the product's reads of them in the brute force's shapes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from django.db import connection
from django.utils import timezone

from examples.shop import services as shop_services
from examples.shop.models import Order, OrderStatus, Status
from reporting import selectors, services
from reporting.choices import RefreshOutcome
from tests import brute_force
from tests.brute_force import StatusRow, brute_force_report

EPOCH = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
# Noon today: the day of the tests that write "now", in the reports' days.
TODAY = timezone.now().astimezone(dt.UTC).replace(hour=12, minute=0, second=0, microsecond=0)


def orders_create(count: int, *, created: dt.datetime = EPOCH) -> list[int]:
    """Create ``count`` orders without any status row; return their ids in order."""
    orders = Order.objects.bulk_create([Order(created=created) for _ in range(count)])
    return [o.pk for o in orders]


def statuses_create(rows: Sequence[tuple[int, dt.datetime, str]]) -> list[StatusRow]:
    """Insert status rows ``(order_id, created, status)`` in the given order; return them with ids."""
    objs = OrderStatus.objects.bulk_create(
        [OrderStatus(order_id=order_id, created=created, status=status) for order_id, created, status in rows]
    )
    return [StatusRow(o.pk, o.order_id, o.created, o.status) for o in objs]


def brute_force_lists(
    rows: Sequence[StatusRow], statuses: Sequence[str] = Status.values, *, since: bool = False
) -> dict[str, list[tuple]]:
    """:func:`tests.brute_force.brute_force_lists`, in the example shop's statuses by default."""
    return brute_force.brute_force_lists(rows, statuses, since=since)


def transitions_read(strategy: str, *, days: int = 7, weeks: int = 2) -> tuple[dict, dict]:
    """What the selectors say, in the shapes of :func:`tests.brute_force.brute_force_transitions` and
    :func:`tests.brute_force.brute_force_transition_times` (zeros left out)."""
    daily = selectors.order_transitions_daily(days=days, strategy=strategy)
    transitions = {
        (day, *kind): n
        for kind, series in daily.series.items()
        for day, n in zip(daily.days, series, strict=True)
        if n
    }
    result = selectors.order_transition_times(weeks=weeks, strategy=strategy)
    times = {
        (week, status): (t.transitions, t.median, t.p90)
        for status, series in result.series.items()
        for week, t in zip(result.weeks, series, strict=True)
        if t.transitions
    }
    return transitions, times


def all_status_rows() -> list[StatusRow]:
    """Every status row of the history, raw."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, order_id, created, status FROM reporting_example_orderstatus")
        return [StatusRow(*r) for r in cursor.fetchall()]


def reset() -> None:
    """Empty the source tables and logs, and record a refresh of the empty state."""
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE reporting_example_order, reporting_example_orderstatus, "
            "reporting_orderchange, reporting_refreshrun"
        )
    assert services.views_refresh(force=True).outcome == RefreshOutcome.OK


def brute_force_reports() -> dict:
    """Every report over the current tables, by the definition
    (:func:`tests.brute_force.brute_force_report`)."""
    return brute_force_report(
        all_status_rows(), dict(Order.objects.values_list("id", "created")), Status.values
    )


def reports_read(strategy: str, *, days: int = 7) -> dict:
    """What the selectors say, in the shape of :func:`brute_force_reports`."""
    lists = {
        status: [r[:5] for r in selectors.order_iter_by_status(status=status, strategy=strategy)]
        for status in Status.values
    }
    counts = selectors.order_status_counts(strategy=strategy).as_dict()
    result = selectors.order_daily_counts(days=days, strategy=strategy)
    daily = {
        (day, status): n
        for status, series in result.series.items()
        for day, n in zip(result.days, series, strict=True)
        if n
    }
    transitions, times = transitions_read(strategy, days=days, weeks=min(520, days // 7 + 2))
    return {"lists": lists, "counts": counts, "daily": daily, "transitions": transitions, "times": times}


def view_page(status: str, limit: int) -> list[tuple]:
    """A page as a BI tool asks for it: the real-time view, ORDER BY ... LIMIT."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT order_id, status_id, status, status_created, status_since "
            "FROM reporting.order_latest_status_live "
            "WHERE status = %s ORDER BY status_created DESC, order_id DESC LIMIT %s",
            [status, limit],
        )
        return cursor.fetchall()


def seeded(orders: int = 200) -> None:
    """Empty tables, then ``orders`` seeded orders as of :data:`TODAY`, refreshed."""
    reset()
    shop_services.orders_seed(orders=orders, seed=4, until=TODAY)
    assert services.views_refresh().outcome == RefreshOutcome.OK


def change(order_ids, status: str = "cancelled", seconds: int = 1) -> None:
    """A status row for each of ``order_ids``, ``seconds`` after :data:`TODAY`."""
    OrderStatus.objects.bulk_create(
        [
            OrderStatus(order_id=i, created=TODAY + dt.timedelta(seconds=seconds), status=status)
            for i in order_ids
        ]
    )
