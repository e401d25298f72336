"""Reads: orders by latest status, counts per status and per day, for every read strategy.

Every selector takes keyword-only arguments and a ``strategy`` (``None``: the
``REPORTING_DEFAULT_STRATEGY`` setting, ``realtime`` unless changed):

* ``live``: computed from ``reporting_orderstatus`` at query time, with the ORM's
  correlated ``Subquery`` (the straightforward Django answer). Exact; its cost
  grows with the number of orders.
* ``snapshot``: read from the materialized views. Fast; as fresh as the last refresh.
* ``realtime``: the materialized views, corrected by the change log: the orders
  changed since the views' snapshot are computed live, an index lookup each.
  Exact, and close to ``snapshot`` in cost while few orders changed.

The rows or counts of an answer come from one SQL statement, so even under READ
COMMITTED they come from one MVCC snapshot (the view, the refresh log and the
change log are read together).

Lists are ordered most recent status change first, ``(status_created, order_id)``
descending, and paginated by keyset: a page returns the cursor of its last row,
and the next page starts after it. Large lists are read as tuples, never as
model instances (270 k instances cost about 1.5 s of Python alone). Every answer
carries its :class:`~reporting.selectors.freshness.ReadFreshness`.
"""

from __future__ import annotations

__all__ = [
    "MAX_PAGE_SIZE",
    "Cursor",
    "DailyCounts",
    "OrderPage",
    "OrderRow",
    "StatusCounts",
    "order_daily_counts",
    "order_iter_by_status",
    "order_list_by_status",
    "order_status_counts",
]

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from django.db import connection
from django.db.models import Count, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from reporting import conf
from reporting.choices import Status, Strategy
from reporting.exceptions import InvalidParameterError, InvalidStatusError
from reporting.models import Order, OrderLatestStatus, OrderStatus
from reporting.selectors.freshness import ReadFreshness, read_freshness

MAX_PAGE_SIZE = 1000
MAX_DAYS = 3660


class OrderRow(NamedTuple):
    """An order and its latest status."""

    order_id: int
    status_id: int
    status: str
    status_created: dt.datetime


class Cursor(NamedTuple):
    """A keyset position: the next page holds rows strictly after it, in list order."""

    status_created: dt.datetime
    order_id: int

    @classmethod
    def of(cls, row: OrderRow) -> Cursor:
        return cls(row.status_created, row.order_id)


@dataclass(frozen=True)
class OrderPage:
    """One page of orders in a status."""

    rows: list[OrderRow]
    #: Pass as ``after`` to get the next page; ``None`` on the last page.
    next_after: Cursor | None
    freshness: ReadFreshness

    @property
    def strategy(self) -> Strategy:
        return self.freshness.strategy


@dataclass(frozen=True)
class StatusCounts:
    """How many orders are in each latest status; ``none``: orders without any status row."""

    counts: dict[str, int]
    none: int
    freshness: ReadFreshness
    total: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "total", sum(self.counts.values()) + self.none)

    @property
    def strategy(self) -> Strategy:
        return self.freshness.strategy

    def as_dict(self) -> dict[str, int]:
        return {**self.counts, "none": self.none}


@dataclass(frozen=True)
class DailyCounts:
    """Orders per day of creation (UTC) and latest status, oldest day first."""

    days: list[dt.date]
    #: status (and ``none``) -> one count per day of ``days``.
    series: dict[str, list[int]]
    freshness: ReadFreshness


def _strategy(strategy: object) -> Strategy:
    if strategy is None:
        strategy = conf.default_strategy()
    if not isinstance(strategy, str) or strategy not in Strategy.values:
        raise InvalidParameterError("strategy", strategy, Strategy.values)
    return Strategy(strategy)


def _status(status: object) -> Status:
    if not isinstance(status, str) or status not in Status.values:
        raise InvalidStatusError(status)
    return Status(status)


# --- Lists -------------------------------------------------------------------------------------------------


def _latest_status_id() -> Subquery:
    """The id of the latest status row of the outer row's order (greatest (created, id))."""
    return Subquery(
        OrderStatus.objects.filter(order_id=OuterRef("order_id")).order_by("-created", "-id").values("id")[:1]
    )


def _orm_rows(*, status: Status, strategy: Strategy, after: Cursor | None) -> QuerySet[Any, tuple[Any, ...]]:
    """Rows ``(order_id, status_id, status, status_created)`` in ``status``, in list order."""
    qs: QuerySet[Any, Any]
    if strategy is Strategy.LIVE:
        # Status rows that are the latest of their order: the correlated subquery
        # runs once per row in the wanted status, an index lookup each.
        qs = OrderStatus.objects.filter(status=status, id=_latest_status_id())
        created, columns = "created", ("order_id", "id", "status", "created")
    else:
        qs = OrderLatestStatus.objects.filter(status=status)
        created, columns = "status_created", ("order_id", "status_id", "status", "status_created")
    if after is not None:
        # (created, order_id) < after, written so that "created <= c" bounds the
        # index scan and the OR only sorts out the rows that share the timestamp c.
        qs = qs.filter(**{f"{created}__lte": after.status_created}).filter(
            Q(**{f"{created}__lt": after.status_created}) | Q(order_id__lt=after.order_id)
        )
    return qs.order_by(f"-{created}", "-order_id").values_list(*columns)


# The real-time list. reporting.order_latest_status_live says the same for SQL
# clients; this spells it out so that each branch is ordered (and limited) on its
# own, and PostgreSQL merges them (Merge Append) instead of sorting every row in
# the status: a page of 100 reads about 100 index entries. Only the fragments
# below are formatted in; values are always parameters.
REALTIME_ROWS_SQL = """
(SELECT v.order_id, v.status_id, v.status::text, v.status_created
 FROM reporting.order_latest_status AS v
 WHERE v.status = %(status)s {after_v}
   AND NOT (SELECT needs_full_recompute FROM reporting.snapshot_state)
   AND v.order_id NOT IN (SELECT p.order_id FROM reporting.pending_changes AS p)
 ORDER BY v.status_created DESC, v.order_id DESC {limit})
UNION ALL
(SELECT latest.order_id, latest.id, latest.status::text, latest.created
 FROM reporting.pending_changes AS p
 CROSS JOIN LATERAL (
     SELECT s.order_id, s.id, s.status, s.created
     FROM public.reporting_orderstatus AS s
     WHERE s.order_id = p.order_id
     ORDER BY s.created DESC, s.id DESC
     LIMIT 1
 ) AS latest
 WHERE latest.status = %(status)s {after_latest}
   AND NOT (SELECT needs_full_recompute FROM reporting.snapshot_state)
 ORDER BY latest.created DESC, latest.order_id DESC {limit})
UNION ALL
(SELECT everything.order_id, everything.id, everything.status::text, everything.created
 FROM (
     SELECT DISTINCT ON (s.order_id) s.order_id, s.id, s.status, s.created
     FROM public.reporting_orderstatus AS s
     ORDER BY s.order_id, s.created DESC, s.id DESC
 ) AS everything
 WHERE everything.status = %(status)s {after_everything}
   AND (SELECT needs_full_recompute FROM reporting.snapshot_state)
 ORDER BY everything.created DESC, everything.order_id DESC {limit})
ORDER BY 4 DESC, 1 DESC {limit}
"""


def _realtime_rows_sql(*, after: Cursor | None, limit: int | None) -> tuple[str, dict[str, Any]]:
    params: dict[str, Any] = {}
    fragments = {"after_v": "", "after_latest": "", "after_everything": "", "limit": ""}
    if after is not None:
        params.update(after_created=after.status_created, after_order=after.order_id)
        for key, alias, created in (
            ("after_v", "v", "status_created"),
            ("after_latest", "latest", "created"),
            ("after_everything", "everything", "created"),
        ):
            fragments[key] = (
                f"AND ({alias}.{created}, {alias}.order_id) < (%(after_created)s, %(after_order)s)"
            )
    if limit is not None:
        params["limit"] = limit
        fragments["limit"] = "LIMIT %(limit)s"
    return REALTIME_ROWS_SQL.format(**fragments), params  # only the fixed fragments above


def order_list_by_status(
    *,
    status: str,
    strategy: str | None = None,
    after: Cursor | None = None,
    limit: int = 100,
) -> OrderPage:
    """Return one page of the orders whose latest status is ``status``.

    Args:
        status: ``pending``, ``complete`` or ``cancelled``.
        strategy: ``live``, ``snapshot`` or ``realtime``; ``None`` for the default.
        after: the ``next_after`` of the previous page; ``None`` for the first page.
        limit: rows per page, 1 to ``MAX_PAGE_SIZE``.

    Returns:
        The rows, most recent status change first, the cursor of the next page and
        the freshness of the answer.

    Raises:
        InvalidStatusError: unknown status.
        InvalidParameterError: unknown strategy, or ``limit`` out of range.
    """
    status = _status(status)
    strategy = _strategy(strategy)
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_PAGE_SIZE:
        raise InvalidParameterError("limit", limit, f"an integer from 1 to {MAX_PAGE_SIZE}")
    freshness = read_freshness(strategy)
    # One row more than asked tells whether there is a next page.
    if strategy is Strategy.REALTIME:
        sql, params = _realtime_rows_sql(after=after, limit=limit + 1)
        with connection.cursor() as cursor:
            cursor.execute(sql, {**params, "status": status.value})
            rows = [OrderRow(*row) for row in cursor.fetchall()]
    else:
        rows = [
            OrderRow(*row) for row in _orm_rows(status=status, strategy=strategy, after=after)[: limit + 1]
        ]
    next_after = Cursor.of(rows[limit - 1]) if len(rows) > limit else None
    return OrderPage(rows=rows[:limit], next_after=next_after, freshness=freshness)


def order_iter_by_status(
    *, status: str, strategy: str | None = None, chunk_size: int = 5000
) -> Iterator[OrderRow]:
    """Yield every order whose latest status is ``status``, streaming from a server-side cursor.

    Memory stays constant whatever the number of rows: rows are fetched
    ``chunk_size`` at a time and never built into model instances.

    Args:
        status: ``pending``, ``complete`` or ``cancelled``.
        strategy: ``live``, ``snapshot`` or ``realtime``; ``None`` for the default.
        chunk_size: rows fetched per round trip.

    Raises:
        InvalidStatusError: unknown status.
        InvalidParameterError: unknown strategy.
    """
    status = _status(status)
    strategy = _strategy(strategy)
    if strategy is not Strategy.REALTIME:
        for row in _orm_rows(status=status, strategy=strategy, after=None).iterator(chunk_size=chunk_size):
            yield OrderRow(*row)
        return
    sql, params = _realtime_rows_sql(after=None, limit=None)
    cursor = connection.chunked_cursor()
    try:
        cursor.execute(sql, {**params, "status": status.value})
        while chunk := cursor.fetchmany(chunk_size):
            for row in chunk:
                yield OrderRow(*row)
    finally:
        cursor.close()


# --- Counts ------------------------------------------------------------------------------------------------

SNAPSHOT_COUNTS_SQL = "SELECT status, orders FROM reporting.order_status_counts"
REALTIME_COUNTS_SQL = "SELECT status, orders FROM reporting.order_status_counts_live"


def order_status_counts(*, strategy: str | None = None) -> StatusCounts:
    """Count the orders in each latest status.

    Args:
        strategy: ``live``, ``snapshot`` or ``realtime``; ``None`` for the default.

    Returns:
        A count for every status (zero included) and ``none``, the orders that have
        no status row at all, with the freshness of the answer.
    """
    strategy = _strategy(strategy)
    freshness = read_freshness(strategy)
    counts = dict.fromkeys([*Status.values, "none"], 0)
    if strategy is Strategy.LIVE:
        # DESIGN.md section 1's annotation, grouped: one statement, NULL for "none".
        latest_status = Subquery(
            OrderStatus.objects.filter(order_id=OuterRef("pk"))
            .order_by("-created", "-id")
            .values("status")[:1]
        )
        rows = Order.objects.annotate(latest=latest_status).order_by().values("latest").annotate(n=Count("*"))
        for row in rows:
            counts[row["latest"] or "none"] = row["n"]
    else:
        with connection.cursor() as cursor:
            cursor.execute(SNAPSHOT_COUNTS_SQL if strategy is Strategy.SNAPSHOT else REALTIME_COUNTS_SQL)
            for status, n in cursor.fetchall():
                counts[status] = n
    none = counts.pop("none")
    return StatusCounts(counts=counts, none=none, freshness=freshness)


DAILY_SQL = {
    Strategy.SNAPSHOT: "SELECT day, status, orders FROM reporting.order_daily_status WHERE day >= %s",
    Strategy.REALTIME: "SELECT day, status, orders FROM reporting.order_daily_status_live WHERE day >= %s",
    Strategy.LIVE: """
        SELECT (o.created AT TIME ZONE 'UTC')::date AS day, coalesce(latest.status::text, 'none'), count(*)
        FROM reporting_order AS o
        LEFT JOIN LATERAL (
            SELECT s.status FROM reporting_orderstatus AS s
            WHERE s.order_id = o.id ORDER BY s.created DESC, s.id DESC LIMIT 1
        ) AS latest ON true
        WHERE o.created >= %s::date AT TIME ZONE 'UTC'
        GROUP BY 1, 2
    """,
}


def order_daily_counts(*, days: int = 30, strategy: str | None = None) -> DailyCounts:
    """Count the orders created on each of the last ``days`` days (UTC), per latest status.

    Args:
        days: how many days, today included (1 to 3660).
        strategy: ``live``, ``snapshot`` or ``realtime``; ``None`` for the default.

    Returns:
        Every day of the range (days without orders count zero) and one series per
        status and ``none``.
    """
    strategy = _strategy(strategy)
    if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= MAX_DAYS:
        raise InvalidParameterError("days", days, f"an integer from 1 to {MAX_DAYS}")
    freshness = read_freshness(strategy)
    today = timezone.now().astimezone(dt.UTC).date()
    first = today - dt.timedelta(days=days - 1)
    day_list = [first + dt.timedelta(days=i) for i in range(days)]
    index = {day: i for i, day in enumerate(day_list)}
    series = {name: [0] * days for name in [*Status.values, "none"]}
    with connection.cursor() as cursor:
        cursor.execute(DAILY_SQL[strategy], [first])
        for day, status, n in cursor.fetchall():
            if day in index:
                series[status][index[day]] = n
    return DailyCounts(days=day_list, series=series, freshness=freshness)
