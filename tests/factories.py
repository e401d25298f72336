"""Test data: status histories written straight into the source tables."""

from __future__ import annotations

import datetime as dt
import itertools
import math
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


def brute_force_transitions(rows: Sequence[StatusRow]) -> dict[tuple, int]:
    """Status changes per (day, from, to), by the definition: each row whose previous row
    (by (created, id)) of the same order has another status."""
    counts: dict[tuple, int] = {}
    for before, row, _first in _changes(rows):
        key = (row.created.astimezone(dt.UTC).date(), before.status, row.status)
        counts[key] = counts.get(key, 0) + 1
    return counts


def brute_force_transition_times(rows: Sequence[StatusRow]) -> dict[tuple, tuple]:
    """Per (week's Monday, to status) for complete and cancelled: (changes, median, p90) of the
    time from the order's first row, percentiles interpolated like PostgreSQL's percentile_cont."""
    durations: dict[tuple, list[dt.timedelta]] = {}
    for _before, row, first in _changes(rows):
        if row.status in ("complete", "cancelled"):
            day = row.created.astimezone(dt.UTC).date()
            durations.setdefault((day - dt.timedelta(days=day.weekday()), row.status), []).append(
                row.created - first.created
            )
    return {
        key: (len(values), _percentile(sorted(values), 0.5), _percentile(sorted(values), 0.9))
        for key, values in durations.items()
    }


def _changes(rows: Sequence[StatusRow]) -> list[tuple[StatusRow, StatusRow, StatusRow]]:
    """(previous row, row, order's first row) for every row that changes its order's status."""
    histories: dict[int, list[StatusRow]] = {}
    for row in rows:
        histories.setdefault(row.order_id, []).append(row)
    changes = []
    for history in histories.values():
        history.sort(key=lambda r: (r.created, r.id))
        changes += [(a, b, history[0]) for a, b in itertools.pairwise(history) if a.status != b.status]
    return changes


def _percentile(values: list[dt.timedelta], fraction: float) -> dt.timedelta:
    position = fraction * (len(values) - 1)
    low = math.floor(position)
    high = min(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (position - low)


def transitions_read(strategy: str, *, days: int = 7, weeks: int = 2) -> tuple[dict, dict]:
    """What the selectors say, in the shapes of the brute-force functions above (zeros left out)."""
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
