"""Reads: everything the dashboard page shows, in one call."""

from __future__ import annotations

__all__ = ["MAX_RANGE_DAYS", "DashboardData", "dashboard_data", "range_days"]

import datetime as dt
from dataclasses import dataclass

from reporting.declaration import default_status
from reporting.exceptions import InvalidParameterError
from reporting.selectors.freshness import Freshness, freshness
from reporting.selectors.orders import (
    Cursor,
    DailyCounts,
    OrderPage,
    StatusCounts,
    order_daily_counts,
    order_list_by_status,
    order_status_counts,
    status_read_parse,
)
from reporting.selectors.stuck import StuckOrders, orders_stuck_pending
from reporting.selectors.transitions import (
    TransitionCounts,
    TransitionTimes,
    order_transition_times,
    order_transitions_daily,
)

MAX_RANGE_DAYS = 366


@dataclass(frozen=True)
class DashboardData:
    #: Orders per latest status: all of them, or those created in the date range.
    counts: StatusCounts
    daily: DailyCounts
    #: A page of the orders in ``status``, most recent status change first.
    orders: OrderPage
    status: str
    freshness: Freshness
    #: Orders pending for longer than REPORTING_STUCK_PENDING_HOURS, the longest first.
    stuck: StuckOrders
    #: Status changes per day and kind, over the chart's days.
    transitions: TransitionCounts
    #: Time to complete and to cancel, over the weeks up to the chart's last day.
    times: TransitionTimes
    #: The date range (UTC days, both included), or ``None`` for all orders.
    dates: tuple[dt.date, dt.date] | None = None


def range_days(first: dt.date, last: dt.date) -> int:
    """The number of days from ``first`` to ``last``, both included, for the date filters.

    Raises:
        InvalidParameterError: ``last`` before ``first``, or more than 366 days.
    """
    span = (last - first).days + 1
    if not 1 <= span <= MAX_RANGE_DAYS:
        raise InvalidParameterError(
            "to", last.isoformat(), f"a day on or after from, at most {MAX_RANGE_DAYS} days later"
        )
    return span


def dashboard_data(
    *,
    status: str | None = None,
    after: Cursor | None = None,
    dates: tuple[dt.date, dt.date] | None = None,
    days: int = 30,
    weeks: int = 8,
    page_size: int = 25,
    strategy: str | None = None,
) -> DashboardData:
    """Counts per status, orders per day, a page of the orders in a status, status analytics, freshness.

    Args:
        status: whose orders to list.
        after: the cursor of the page to show; ``None`` for the first.
        dates: a range of UTC days, both included: the chart shows them, the counts
            are of the orders created on them, the list of the orders that entered
            the status on them. ``None``: the last ``days`` days for the chart, all
            orders for the counts and the list.
        days: days of the orders-per-day chart without ``dates``, today included.
        weeks: weeks of the time to complete / to cancel, up to the chart's last day.
        page_size: rows of the list.
        strategy: ``None`` for ``REPORTING_DEFAULT_STRATEGY``.

    Raises:
        InvalidParameterError: a range that ends before it starts, or longer than 366 days.
    """
    parsed = status_read_parse(default_status() if status is None else status)
    if dates is None:
        transitions = order_transitions_daily(days=days, strategy=strategy)
        times = order_transition_times(weeks=weeks, strategy=strategy)
        daily = order_daily_counts(days=days, strategy=strategy)
        counts = order_status_counts(strategy=strategy)
        since = None
    else:
        first, last = dates
        span = range_days(first, last)
        transitions = order_transitions_daily(days=span, until=last, strategy=strategy)
        times = order_transition_times(weeks=weeks, until=last, strategy=strategy)
        daily = order_daily_counts(days=span, strategy=strategy, until=last)
        totals = {name: sum(series) for name, series in daily.series.items()}
        none = totals.pop("none", 0)
        counts = StatusCounts(counts=totals, none=none, freshness=daily.freshness)
        since = dt.datetime.combine(first, dt.time(), dt.UTC)
        end = Cursor(dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), dt.UTC), None)
        if after is None:  # the list starts at the end of the range
            after = end
        elif after.status_created >= end.status_created:
            raise InvalidParameterError("after", "a later row", "a row of the list of these days")
    return DashboardData(
        counts=counts,
        daily=daily,
        orders=order_list_by_status(
            status=parsed, strategy=strategy, after=after, limit=page_size, since=since, with_columns=False
        ),
        status=parsed,
        freshness=freshness(runs=5),
        stuck=orders_stuck_pending(limit=5),
        transitions=transitions,
        times=times,
        dates=dates,
    )
