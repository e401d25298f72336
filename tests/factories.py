"""Test data: status histories written straight into the source tables."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from django.db import connection

from examples.shop.models import Order, OrderStatus, Status
from tests import brute_force
from tests.brute_force import StatusRow

EPOCH = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


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
    from reporting import selectors

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
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, order_id, created, status FROM reporting_example_orderstatus")
        return [StatusRow(*r) for r in cursor.fetchall()]
