"""Reads: orders by latest status and counts per status, for every read strategy.

Every selector takes keyword-only arguments and a ``strategy``:

* ``live``: computed from ``reporting_orderstatus`` at query time with the ORM's
  correlated ``Subquery`` (the straightforward Django answer). Exact, and its
  cost grows with the number of orders.
* ``snapshot``: read from the materialized view ``reporting.order_latest_status``.
  Fast; as fresh as the last refresh.

Lists are ordered most recent status change first, ``(status_created, order_id)``
descending, and paginated by keyset: a page returns the cursor of its last row,
and the next page starts after it. Large lists are read as tuples, never as
model instances (270 k instances cost about 1.5 s of Python alone).
"""

from __future__ import annotations

__all__ = [
    "Cursor",
    "Freshness",
    "OrderPage",
    "OrderRow",
    "RefreshRunSummary",
    "StatusCounts",
    "freshness",
    "order_iter_by_status",
    "order_list_by_status",
    "order_status_counts",
]

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from django.db import connection
from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Subquery

from reporting.choices import Status, Strategy
from reporting.exceptions import InvalidParameterError, InvalidStatusError
from reporting.models import Order, OrderLatestStatus, OrderStatus, RefreshRun

MAX_PAGE_SIZE = 1000


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
    strategy: Strategy


@dataclass(frozen=True)
class StatusCounts:
    """How many orders are in each latest status; ``none``: orders without any status row."""

    counts: dict[str, int]
    none: int
    strategy: Strategy
    total: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "total", sum(self.counts.values()) + self.none)

    def as_dict(self) -> dict[str, int]:
        return {**self.counts, "none": self.none}


def _validated_strategy(strategy: object) -> Strategy:
    if not isinstance(strategy, str) or strategy not in Strategy.values:
        raise InvalidParameterError("strategy", strategy, Strategy.values)
    return Strategy(strategy)


def _validated_status(status: object) -> Status:
    if not isinstance(status, str) or status not in Status.values:
        raise InvalidStatusError(status)
    return Status(status)


def _latest_status_id() -> Subquery:
    """The id of the latest status row of the outer row's order (greatest (created, id))."""
    return Subquery(
        OrderStatus.objects.filter(order_id=OuterRef("order_id")).order_by("-created", "-id").values("id")[:1]
    )


def _rows_queryset(*, status: Status, strategy: Strategy) -> QuerySet[Any, tuple[Any, ...]]:
    """Rows ``(order_id, status_id, status, status_created)`` in ``status``, in list order."""
    if strategy is Strategy.LIVE:
        # Status rows that are the latest of their order: the correlated subquery
        # runs once per row in the wanted status, an index lookup each.
        return (
            OrderStatus.objects.filter(status=status, id=_latest_status_id())
            .order_by("-created", "-order_id")
            .values_list("order_id", "id", "status", "created")
        )
    return (
        OrderLatestStatus.objects.filter(status=status)
        .order_by("-status_created", "-order_id")
        .values_list("order_id", "status_id", "status", "status_created")
    )


def _after(qs: QuerySet[Any, Any], *, strategy: Strategy, after: Cursor) -> QuerySet[Any, Any]:
    created, order = ("created", "order_id") if strategy is Strategy.LIVE else ("status_created", "order_id")
    # (created, order_id) < (c, o), written so that "created <= c" bounds the index scan
    # and the OR only sorts out the rows that share the timestamp c.
    return qs.filter(**{f"{created}__lte": after.status_created}).filter(
        Q(**{f"{created}__lt": after.status_created}) | Q(**{f"{order}__lt": after.order_id})
    )


def order_list_by_status(
    *,
    status: str,
    strategy: str = Strategy.SNAPSHOT,
    after: Cursor | None = None,
    limit: int = 100,
) -> OrderPage:
    """Return one page of the orders whose latest status is ``status``.

    Args:
        status: ``pending``, ``complete`` or ``cancelled``.
        strategy: ``live`` or ``snapshot``.
        after: the ``next_after`` of the previous page; ``None`` for the first page.
        limit: rows per page, 1 to ``MAX_PAGE_SIZE``.

    Returns:
        The rows, most recent status change first, and the cursor of the next page.

    Raises:
        InvalidStatusError: unknown status.
        InvalidParameterError: unknown strategy, or ``limit`` out of range.
    """
    status = _validated_status(status)
    strategy = _validated_strategy(strategy)
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_PAGE_SIZE:
        raise InvalidParameterError("limit", limit, f"an integer from 1 to {MAX_PAGE_SIZE}")
    qs = _rows_queryset(status=status, strategy=strategy)
    if after is not None:
        qs = _after(qs, strategy=strategy, after=after)
    # One row more than asked tells whether there is a next page.
    rows = [OrderRow(*row) for row in qs[: limit + 1]]
    next_after = Cursor.of(rows[limit - 1]) if len(rows) > limit else None
    return OrderPage(rows=rows[:limit], next_after=next_after, strategy=strategy)


def order_iter_by_status(
    *, status: str, strategy: str = Strategy.SNAPSHOT, chunk_size: int = 5000
) -> Iterator[OrderRow]:
    """Yield every order whose latest status is ``status``, streaming from a server-side cursor.

    Memory stays constant whatever the number of rows: rows are fetched
    ``chunk_size`` at a time and never built into model instances.

    Args:
        status: ``pending``, ``complete`` or ``cancelled``.
        strategy: ``live`` or ``snapshot``.
        chunk_size: rows fetched per round trip.

    Raises:
        InvalidStatusError: unknown status.
        InvalidParameterError: unknown strategy.
    """
    status = _validated_status(status)
    strategy = _validated_strategy(strategy)
    for row in _rows_queryset(status=status, strategy=strategy).iterator(chunk_size=chunk_size):
        yield OrderRow(*row)


def order_status_counts(*, strategy: str = Strategy.SNAPSHOT) -> StatusCounts:
    """Count the orders in each latest status.

    Args:
        strategy: ``live`` or ``snapshot``.

    Returns:
        A count for every status (zero included) and ``none``, the orders that have
        no status row at all.
    """
    strategy = _validated_strategy(strategy)
    latest: QuerySet[Any, Any]
    if strategy is Strategy.LIVE:
        latest = OrderStatus.objects.filter(id=_latest_status_id())
        none = Order.objects.filter(~Exists(OrderStatus.objects.filter(order_id=OuterRef("pk")))).count()
    else:
        latest = OrderLatestStatus.objects.all()
        none = Order.objects.count() - latest.count()
    counts = dict.fromkeys(Status.values, 0)
    for row in latest.order_by().values("status").annotate(n=Count("*")):
        counts[row["status"]] = row["n"]
    return StatusCounts(counts=counts, none=none, strategy=strategy)


# --- Freshness ---------------------------------------------------------------------------------------------

FRESHNESS_SQL = """
SELECT last_ok.snapshot_at,
       statement_timestamp(),
       (SELECT count(DISTINCT coalesce(c.order_id, 0)) FROM reporting_orderchange AS c
        WHERE NOT pg_visible_in_snapshot(c.xid, last_ok.snapshot::pg_snapshot))
FROM (SELECT 1) AS one
LEFT JOIN (
    SELECT snapshot, snapshot_at FROM reporting_refreshrun WHERE outcome = 'ok' ORDER BY id DESC LIMIT 1
) AS last_ok ON true
"""


@dataclass(frozen=True)
class RefreshRunSummary:
    """One row of the refresh log."""

    id: int
    trigger: str
    outcome: str
    started: dt.datetime
    snapshot_at: dt.datetime | None
    duration: dt.timedelta | None
    rows: int | None
    changes_absorbed: int | None
    error: str


@dataclass(frozen=True)
class Freshness:
    """How fresh the materialized views are.

    Attributes:
        as_of: when the snapshot that the views hold was taken: everything committed
            before it is in them. ``None``: no refresh has succeeded yet.
        checked_at: the database's clock when this was read.
        changes_since: orders changed since that snapshot (a truncate counts as
            one); ``None`` when there is no snapshot.
        last_runs: the latest refresh runs, newest first.
    """

    as_of: dt.datetime | None
    checked_at: dt.datetime
    changes_since: int | None
    last_runs: list[RefreshRunSummary]

    @property
    def age(self) -> dt.timedelta | None:
        return None if self.as_of is None else self.checked_at - self.as_of


def freshness(*, runs: int = 5) -> Freshness:
    """Say how fresh the views are that ``snapshot`` reads use.

    Args:
        runs: how many of the latest refresh runs to include.
    """
    with connection.cursor() as cursor:
        cursor.execute(FRESHNESS_SQL)
        as_of, checked_at, changes_since = cursor.fetchone()
    last_runs = [
        RefreshRunSummary(**row)
        for row in RefreshRun.objects.order_by("-id").values(
            "id",
            "trigger",
            "outcome",
            "started",
            "snapshot_at",
            "duration",
            "rows",
            "changes_absorbed",
            "error",
        )[:runs]
    ]
    return Freshness(
        as_of=as_of,
        checked_at=checked_at,
        changes_since=changes_since if as_of is not None else None,
        last_runs=last_runs,
    )
