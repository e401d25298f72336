"""Reads: orders stuck in their first status (``pending`` in the example), exact at query time.

The first declared status (``REPORTING_SOURCE['statuses'][0]``) is where a key
starts; one that stays there too long is stuck.
"""

from __future__ import annotations

__all__ = ["StuckOrders", "orders_stuck_pending"]

import datetime as dt
from dataclasses import dataclass
from typing import Any

from reporting import conf
from reporting.choices import Strategy
from reporting.declaration import statuses
from reporting.exceptions import InvalidParameterError
from reporting.selectors import sql as raw
from reporting.selectors.freshness import ReadFreshness, read_freshness
from reporting.selectors.orders import OrderRow

# Stuck since the order entered its first status (status_since: a repeated
# pending row does not make an order newly pending), exact: the real-time rows in
# that status, with hash joins. status_since has no index (the lists' keyset index
# is on status_created), so both reads go through every row in the status; their
# cost grows with the pending orders, not with all orders.
STUCK_SQL = """
SELECT order_id, status_id, status, status_created, status_since
FROM public.reporting_latest_status_rows(%(status)s)
WHERE status_since < statement_timestamp() - %(older_than)s
ORDER BY status_since, order_id
LIMIT %(limit)s
"""
COUNT_SQL = """
SELECT count(*) FROM public.reporting_latest_status_rows(%(status)s)
WHERE status_since < statement_timestamp() - %(older_than)s
"""


@dataclass(frozen=True)
class StuckOrders:
    """Orders in ``pending`` (they entered it: ``status_since``) for longer than ``older_than``."""

    older_than: dt.timedelta
    count: int
    #: The longest stuck first (by ``status_since``), at most the ``limit`` asked for.
    oldest: list[OrderRow]
    freshness: ReadFreshness


def orders_stuck_pending(*, older_than: dt.timedelta | None = None, limit: int = 25) -> StuckOrders:
    """Count the orders pending for longer than ``older_than``, and list the longest stuck.

    Exact (the ``realtime`` strategy). Its cost grows with the pending orders, not
    with all orders.

    Args:
        older_than: how long pending counts as stuck; ``REPORTING_STUCK_PENDING_HOURS`` by default.
        limit: how many of the longest stuck to list, 0 to 1000.

    Raises:
        InvalidParameterError: a threshold that is not positive, or a limit out of range.
    """
    if older_than is None:
        older_than = dt.timedelta(hours=conf.stuck_pending_hours())
    if older_than <= dt.timedelta(0):
        raise InvalidParameterError("older_than", older_than, "a positive duration")
    if not isinstance(limit, int) or isinstance(limit, bool) or not 0 <= limit <= 1000:
        raise InvalidParameterError("limit", limit, "an integer from 0 to 1000")
    freshness = read_freshness(Strategy.REALTIME)
    params: dict[str, Any] = {"older_than": older_than, "limit": limit, "status": statuses()[0]}
    with raw.cursor() as cursor:
        cursor.execute(COUNT_SQL, params)
        count = cursor.fetchone()[0]
        cursor.execute(STUCK_SQL, params)
        rows = [OrderRow(*row) for row in cursor.fetchall()]
    return StuckOrders(older_than=older_than, count=count, oldest=rows, freshness=freshness)
