"""Reads: everything the dashboard page shows, in one call."""

from __future__ import annotations

__all__ = ["DashboardData", "dashboard_data"]

from dataclasses import dataclass

from reporting.choices import Status
from reporting.selectors.freshness import Freshness, freshness
from reporting.selectors.orders import (
    Cursor,
    DailyCounts,
    OrderPage,
    StatusCounts,
    order_daily_counts,
    order_list_by_status,
    order_status_counts,
)


@dataclass(frozen=True)
class DashboardData:
    counts: StatusCounts
    daily: DailyCounts
    cancelled: OrderPage
    freshness: Freshness


def dashboard_data(
    *, after: Cursor | None = None, days: int = 30, page_size: int = 25, strategy: str | None = None
) -> DashboardData:
    """Counts per status, orders per day, a page of cancelled orders and the views' freshness.

    Args:
        after: the cursor of the cancelled-orders page to show; ``None`` for the first.
        days: days of the orders-per-day chart, today included.
        page_size: rows of the cancelled-orders table.
        strategy: ``None`` for ``REPORTING_DEFAULT_STRATEGY``.
    """
    return DashboardData(
        counts=order_status_counts(strategy=strategy),
        daily=order_daily_counts(days=days, strategy=strategy),
        cancelled=order_list_by_status(
            status=Status.CANCELLED, strategy=strategy, after=after, limit=page_size
        ),
        freshness=freshness(runs=5),
    )
