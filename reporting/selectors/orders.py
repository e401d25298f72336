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

Lists are ordered most recent latest row first, ``(status_created, order_id)``
descending (the keyset index of the views serves that order; ``status_since``,
when the order entered its status, is shown, not sorted on), and paginated by
keyset: a page returns the cursor of its last row, and the next page starts
after it. Large lists are read as tuples, never as
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
    "columns_by_status_id",
    "cursor_after_status_row",
    "order_daily_counts",
    "order_ids_by_status",
    "order_iter_by_status",
    "order_list_by_status",
    "order_status_counts",
    "status_read_parse",
    "undeclared_status_counts",
]

import datetime as dt
import functools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from itertools import islice
from types import MappingProxyType
from typing import Any, NamedTuple

from django.db.models import Count, Exists, Min, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone
from psycopg import sql as pgsql

from reporting import conf
from reporting.choices import Strategy
from reporting.declaration import source, statuses
from reporting.exceptions import InvalidParameterError, InvalidStatusError
from reporting.read_models import HistoryRow, KeyRow
from reporting.routers import read_database
from reporting.selectors import sql as raw
from reporting.selectors.freshness import ReadFreshness, read_freshness
from reporting.source_sql import COLUMNS_VIEW
from reporting.sql_files import in_schema

MAX_PAGE_SIZE = 1000
MAX_DAYS = 3660
NO_COLUMNS: Mapping[str, Any] = MappingProxyType({})


class OrderRow(NamedTuple):
    """An order and its latest status (``order_id``: the declared key, an int or a UUID)."""

    order_id: Any
    status_id: int
    status: str
    #: The time of the latest row (its ``created``): what lists are ordered by.
    status_created: dt.datetime
    #: When the order entered ``status``: the ``created`` of the first row of its
    #: final run of rows with that status (a repeated status row moves
    #: ``status_created``, not this).
    status_since: dt.datetime
    #: The columns of the latest row that ``REPORTING_SOURCE["columns"]`` declares to
    #: show, by name (lists and streams; empty when none are declared).
    columns: Mapping[str, Any] = NO_COLUMNS


class Cursor(NamedTuple):
    """A keyset position: the next page holds rows strictly after it, in list order."""

    status_created: dt.datetime
    #: ``None``: the list starts at ``status_created`` itself (a time window's end).
    order_id: Any

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

    @property
    def next_after_status_id(self) -> int | None:
        """``next_after`` as a plain number, for URLs: the latest status row of the page's last order.

        ``cursor_after_status_row`` turns it back into ``next_after``.
        """
        return self.rows[-1].status_id if self.next_after is not None else None


@dataclass(frozen=True)
class StatusCounts:
    """How many orders are in each latest status; ``none``: orders without any status row.

    ``counts`` holds every declared status (zero included), in the declared order,
    then every value the history holds that the declaration does not list
    (:attr:`undeclared`), each under its own value.
    """

    counts: dict[str, int]
    none: int
    freshness: ReadFreshness
    total: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "total", sum(self.counts.values()) + self.none)

    @property
    def strategy(self) -> Strategy:
        return self.freshness.strategy

    @property
    def undeclared(self) -> dict[str, int]:
        """The counts of the latest statuses that the declaration does not list."""
        declared = set(statuses())
        return {status: n for status, n in self.counts.items() if status not in declared}

    def as_dict(self) -> dict[str, int]:
        """``counts`` and ``none``; a history value ``'none'`` (never declared) shows in ``counts`` only."""
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


# --- Lists -------------------------------------------------------------------------------------------------


def _latest_status_id() -> Subquery:
    """The id of the latest status row of the outer row's order (greatest (created, id))."""
    return Subquery(
        HistoryRow.objects.filter(order_id=OuterRef("order_id")).order_by("-created", "-id").values("id")[:1]
    )


def _status_since() -> Subquery:
    """When the outer row's order entered the outer row's status, if that row is its latest.

    The first ``created`` of the rows that only rows of their own status follow
    (by ``(created, id)``): the order's final run of equal statuses.
    """
    other_after = HistoryRow.objects.filter(order_id=OuterRef("order_id")).exclude(status=OuterRef("status"))
    other_after = other_after.filter(
        Q(created__gt=OuterRef("created")) | Q(created=OuterRef("created"), id__gt=OuterRef("id"))
    )
    return Subquery(
        HistoryRow.objects.filter(order_id=OuterRef("order_id"))
        .filter(~Exists(other_after))
        .order_by()
        .values("order_id")
        .annotate(first=Min("created"))
        .values("first")
    )


def _live_rows(
    *, status: str, after: Cursor | None, since: dt.datetime | None = None
) -> QuerySet[Any, tuple[Any, ...]]:
    """Live rows ``(order_id, status_id, status, status_created, status_since)`` in ``status``, in list order.

    Status rows that are the latest of their order: the ORM's correlated subquery
    runs once per row in the wanted status, an index lookup each; ``status_since``
    one more per row shown, over the order's rows.
    """
    qs = HistoryRow.objects.using(read_database()).filter(status=status, id=_latest_status_id())
    if since is not None:
        qs = qs.filter(created__gte=since)
    if after is not None:
        # (created, order_id) < after, written so that "created <= c" bounds the
        # index scan and the OR only sorts out the rows that share the timestamp c.
        if after.order_id is None:
            qs = qs.filter(created__lt=after.status_created)
        else:
            qs = qs.filter(created__lte=after.status_created).filter(
                Q(created__lt=after.status_created) | Q(order_id__lt=after.order_id)
            )
    return (
        qs.annotate(status_since=_status_since())
        .order_by("-created", "-order_id")
        .values_list("order_id", "id", "status", "created", "status_since")
    )


# The snapshot list: the materialized view's keyset index, in list order.
SNAPSHOT_ROWS_SQL = in_schema("""
SELECT v.order_id, v.status_id, v.status::text, v.status_created, v.status_since
FROM reporting.order_latest_status AS v
WHERE v.status = %(status)s {after} {since}
{order} {limit}
""")
# The real-time list, in list order: its SQL is in views_sql (the function
# reporting_latest_status_page, which reads each part of the real-time view in
# order from its own index and merges them), not here.
REALTIME_ROWS_SQL = """
SELECT order_id, status_id, status, status_created, status_since
FROM public.reporting_latest_status_page(
    %(status)s, %(after_created)s, %(after_order)s, %(since)s, %(limit)s
)
"""
# The real-time rows in no order (whole lists): the function
# reporting_latest_status_rows, which reads the same parts with hash joins rather
# than row by row (views_sql/order_latest_status_rows.sql).
REALTIME_UNORDERED_SQL = """
SELECT order_id, status_id, status, status_created, status_since
FROM public.reporting_latest_status_rows(%(status)s)
"""


# Declared columns of these types come back as PostgreSQL writes them: Python has
# no value for 'infinity', a BC date, '24:00', '1 mon 2 days' or NaN, and JSON
# numbers such as 1e400 do not survive json.loads and dumps.
COLUMNS_AS_TEXT = (
    "date",
    "time",
    "timetz",
    "timestamp",
    "timestamptz",
    "interval",
    "json",
    "jsonb",
    "float4",
    "float8",
)


def _with_columns(rows: list[OrderRow]) -> list[OrderRow]:
    """``rows`` with the declared columns of their latest rows (``REPORTING_SOURCE["columns"]``).

    One index lookup per row, by the history's unique row id, in a statement of its
    own: history rows do not change, and a row deleted since the rows were read
    shows ``None`` in each column. Read as text, so that columns of any type
    (a project's enums too) come back as Python values or strings, and times,
    intervals, floats and JSON as PostgreSQL's own text (``COLUMNS_AS_TEXT``).
    """
    if not source().columns or not rows:
        return rows
    found = columns_by_status_id([row.status_id for row in rows])
    return [row._replace(columns=found[row.status_id]) for row in rows]


def columns_by_status_id(status_ids: list[int]) -> dict[int, Mapping[str, Any]]:
    """The declared columns to show of these history rows, by row id (``None`` in each for a row gone)."""
    names = source().columns
    if not names:
        return dict.fromkeys(status_ids, NO_COLUMNS)
    found: dict[int, Mapping[str, Any]] = {
        status_id: dict(zip(names, values, strict=True))
        for status_id, *values in raw.rows(
            _columns_sql(names), {"ids": status_ids}, binary=False, as_text=COLUMNS_AS_TEXT
        )
    }
    missing = MappingProxyType(dict.fromkeys(names))
    return {status_id: found.get(status_id, missing) for status_id in status_ids}


@functools.cache
def _columns_sql(names: tuple[str, ...]) -> str:
    """The lookup of the declared columns by status row, names quoted."""
    return (
        pgsql.SQL("SELECT status_id, {} FROM {} WHERE status_id = ANY(%(ids)s)")
        .format(pgsql.SQL(", ").join(map(pgsql.Identifier, names)), COLUMNS_VIEW)
        .as_string()
    )


def _list_sql(
    strategy: Strategy,
    *,
    status: str,
    after: Cursor | None,
    limit: int | None,
    ordered: bool = True,
    since: dt.datetime | None = None,
) -> tuple[str, dict[str, Any]]:
    """The SQL and parameters of a list read by ``snapshot`` or ``realtime``.

    Only fixed fragments are formatted in; values are always parameters.
    """
    params: dict[str, Any] = {
        "status": status,
        "after_created": after.status_created if after else None,
        "after_order": after.order_id if after else None,
        "since": since,
        "limit": limit,
    }
    if strategy is Strategy.REALTIME:
        return (REALTIME_ROWS_SQL if ordered else REALTIME_UNORDERED_SQL), params
    fragments = {
        "after": "AND (v.status_created, v.order_id) < (%(after_created)s, %(after_order)s)" if after else "",
        # The keyset index reads (status, status_created) from the cursor down to here.
        "since": "AND v.status_created >= %(since)s" if since is not None else "",
        "order": "ORDER BY v.status_created DESC, v.order_id DESC" if ordered else "",
        "limit": "LIMIT %(limit)s" if limit is not None else "",
    }
    return SNAPSHOT_ROWS_SQL.format(**fragments), params


def order_list_by_status(
    *,
    status: str,
    strategy: str | None = None,
    after: Cursor | None = None,
    limit: int = 100,
    since: dt.datetime | None = None,
    with_columns: bool = True,
) -> OrderPage:
    """Return one page of the orders whose latest status is ``status``.

    Args:
        status: ``pending``, ``complete`` or ``cancelled``.
        strategy: ``live``, ``snapshot`` or ``realtime``; ``None`` for the default.
        after: the ``next_after`` of the previous page; ``None`` for the first page.
        limit: rows per page, 1 to ``MAX_PAGE_SIZE``.
        since: only orders that entered the status at or after this time (with
            ``after``, a time window: ``Cursor(until, None)`` starts the list at ``until``).
        with_columns: read the declared columns to show (``OrderRow.columns``); a
            caller that shows none of them saves the lookup.

    Returns:
        The rows, most recent status change first, the cursor of the next page and
        the freshness of the answer.

    Raises:
        InvalidStatusError: unknown status.
        InvalidParameterError: unknown strategy, or ``limit`` out of range.
    """
    status = status_read_parse(status)
    strategy = _strategy(strategy)
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_PAGE_SIZE:
        raise InvalidParameterError("limit", limit, f"an integer from 1 to {MAX_PAGE_SIZE}")
    freshness = read_freshness(strategy)
    # One row more than asked tells whether there is a next page.
    if strategy is Strategy.LIVE or freshness.tail_too_large:
        with raw.read_transaction():
            rows = [
                OrderRow(*row) for row in _live_rows(status=status, after=after, since=since)[: limit + 1]
            ]
    else:
        sql, params = _list_sql(strategy, status=status, after=after, limit=limit + 1, since=since)
        # Prepared: a page is the read a dashboard repeats, and its plan is the same
        # for every status and cursor (views_sql/order_latest_status_page.sql).
        rows = [OrderRow(*row) for row in raw.rows(sql, params, prepare=True)]
    next_after = Cursor.of(rows[limit - 1]) if len(rows) > limit else None
    rows = _with_columns(rows[:limit]) if with_columns else rows[:limit]
    return OrderPage(rows=rows, next_after=next_after, freshness=freshness)


def order_iter_by_status(
    *, status: str, strategy: str | None = None, chunk_size: int = 10_000
) -> Iterator[OrderRow]:
    """Return an iterator over every order whose latest status is ``status``, in list order.

    The rows stream from a server-side cursor, ``chunk_size`` at a time, and are
    never built into model instances: memory stays constant whatever the count.
    The arguments are checked at once, before any row is read.

    Args:
        status: ``pending``, ``complete`` or ``cancelled``.
        strategy: ``live``, ``snapshot`` or ``realtime``; ``None`` for the default.
        chunk_size: rows fetched per round trip.

    Raises:
        InvalidStatusError: unknown status.
        InvalidParameterError: unknown strategy.
    """
    return _iter_rows(status=status_read_parse(status), strategy=_strategy(strategy), chunk_size=chunk_size)


def _iter_rows(*, status: str, strategy: Strategy, chunk_size: int) -> Iterator[OrderRow]:
    if strategy is Strategy.LIVE or _tail_too_large(strategy):
        found: Iterator[tuple[Any, ...]] = _live_iter(status=status, chunk_size=chunk_size)
    else:
        sql, params = _list_sql(strategy, status=status, after=None, limit=None)
        found = raw.stream(sql, params, chunk_size)
    if not source().columns:
        yield from (OrderRow(*row) for row in found)
        return
    # The declared columns, a chunk at a time: memory stays bounded by the chunk.
    while chunk := [OrderRow(*row) for row in islice(found, chunk_size)]:
        yield from _with_columns(chunk)


def _live_iter(*, status: str, chunk_size: int) -> Iterator[tuple[Any, ...]]:
    with raw.read_transaction():
        yield from _live_rows(status=status, after=None).iterator(chunk_size=chunk_size)


def _tail_too_large(strategy: Strategy) -> bool:
    """Whether a ``realtime`` read takes the live path (``ReadFreshness.tail_too_large``)."""
    return strategy is Strategy.REALTIME and read_freshness(strategy).tail_too_large


def order_ids_by_status(*, status: str, strategy: str | None = None) -> list[Any]:
    """Return the ids of every order whose latest status is ``status``, in no particular order.

    The cheapest full list: one column, no sort, read in binary.

    Args:
        status: ``pending``, ``complete`` or ``cancelled``.
        strategy: ``live``, ``snapshot`` or ``realtime``; ``None`` for the default.
    """
    status = status_read_parse(status)
    strategy = _strategy(strategy)
    if strategy is Strategy.LIVE or _tail_too_large(strategy):
        with raw.read_transaction():
            return list(_live_rows(status=status, after=None).order_by().values_list("order_id", flat=True))
    sql, params = _list_sql(strategy, status=status, after=None, limit=None, ordered=False)
    return [row[0] for row in raw.rows(f"SELECT order_id FROM ({sql}) AS rows", params)]  # noqa: S608


# --- Counts ------------------------------------------------------------------------------------------------

SNAPSHOT_COUNTS_SQL = in_schema("SELECT status, orders FROM reporting.order_status_counts")
REALTIME_COUNTS_SQL = in_schema("SELECT status, orders FROM reporting.order_status_counts_live")


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
    found: dict[str | None, int] = {}
    if strategy is Strategy.LIVE or freshness.tail_too_large:
        # The straightforward ORM annotation, grouped: one statement, NULL for "none".
        latest_status = Subquery(
            HistoryRow.objects.filter(order_id=OuterRef("pk"))
            .order_by("-created", "-id")
            .values("status")[:1]
        )
        rows = (
            KeyRow.objects.using(read_database())
            .annotate(latest=latest_status)
            .order_by()
            .values("latest")
            .annotate(n=Count("*"))
        )
        with raw.read_transaction():
            found = {row["latest"]: row["n"] for row in rows}
    else:
        # Prepared: the real-time view takes longer to plan than to run.
        found = dict(
            raw.rows(
                SNAPSHOT_COUNTS_SQL if strategy is Strategy.SNAPSHOT else REALTIME_COUNTS_SQL, prepare=True
            )
        )
    # NULL: the orders without a status row; any other value counts under itself.
    none = found.pop(None, 0)
    named = {status: n for status, n in found.items() if status is not None}
    return StatusCounts(counts=_in_report_order(named), none=none, freshness=freshness)


def _in_report_order(found: Mapping[str, Any]) -> dict[str, Any]:
    """``found`` by status: each declared status (zero if missing) in order, then the undeclared ones."""
    declared = statuses()
    return {
        **{status: found.get(status, 0) for status in declared},
        # An undeclared value only where some order is in it (a real-time sum may be 0).
        **{
            status: found[status]
            for status in sorted(set(found) - set(declared))
            if (any(found[status]) if isinstance(found[status], list) else found[status])
        },
    }


def undeclared_status_counts() -> dict[str, int]:
    """The latest statuses now (realtime) that the declaration does not list, with their counts."""
    return order_status_counts(strategy=Strategy.REALTIME).undeclared


def status_read_parse(value: object) -> str:
    """Return ``value`` if some order may be in that status: a declared one, or one the history holds now.

    Reads list orders under any value their latest row holds, so that every order
    counted can be listed; a value no order is in is refused, as a mistake.

    Raises:
        InvalidStatusError: no order is in that status, with the values that are.
    """
    if isinstance(value, str) and value in statuses():
        return value
    present = undeclared_status_counts() if isinstance(value, str) else {}
    if isinstance(value, str) and value in present:
        return value
    raise InvalidStatusError(value, [*statuses(), *present])


DAILY_SQL = {
    Strategy.SNAPSHOT: in_schema(
        "SELECT day, status, orders FROM reporting.order_daily_status WHERE day >= %s AND day <= %s"
    ),
    Strategy.REALTIME: in_schema(
        "SELECT day, status, orders FROM reporting.order_daily_status_live WHERE day >= %s AND day <= %s"
    ),
    # Computed from the history at query time (views_sql/order_daily_status_computed.sql).
    Strategy.LIVE: "SELECT day, status, orders FROM public.reporting_order_daily_status_computed(%s, %s)",
}


def order_daily_counts(
    *, days: int = 30, strategy: str | None = None, until: dt.date | None = None
) -> DailyCounts:
    """Count the orders created on each of ``days`` days (UTC) up to ``until``, per latest status.

    Args:
        days: how many days, ``until`` included (1 to 3660).
        strategy: ``live``, ``snapshot`` or ``realtime``; ``None`` for the default.
        until: the last day; ``None`` for today (UTC).

    Returns:
        Every day of the range (days without orders count zero) and one series per
        status and ``none``.
    """
    strategy = _strategy(strategy)
    if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= MAX_DAYS:
        raise InvalidParameterError("days", days, f"an integer from 1 to {MAX_DAYS}")
    freshness = read_freshness(strategy)
    last = until or timezone.now().astimezone(dt.UTC).date()
    first = last - dt.timedelta(days=days - 1)
    day_list = [first + dt.timedelta(days=i) for i in range(days)]
    index = {day: i for i, day in enumerate(day_list)}
    found: dict[str, list[int]] = {}
    none = [0] * days
    with raw.cursor() as cursor:
        cursor.execute(DAILY_SQL[Strategy.LIVE if freshness.tail_too_large else strategy], [first, last])
        for day, status, n in cursor.fetchall():
            if day in index:
                # NULL: orders without a status row; any other value under itself.
                (none if status is None else found.setdefault(status, [0] * days))[index[day]] = n
    series = {**_in_report_order({**{s: [0] * days for s in statuses()}, **found}), "none": none}
    return DailyCounts(days=day_list, series=series, freshness=freshness)


def cursor_after_status_row(status_id: int) -> Cursor:
    """The keyset cursor that follows the order whose latest status row is ``status_id``.

    This is how the HTTP API keeps its ``after`` parameter a plain number: status
    rows are append-only, so a row's ``(created, order_id)`` never changes, and the
    next page starts after it whatever was written in between.

    Raises:
        InvalidParameterError: no status row has that id (it was deleted, or never was).
    """
    row = (
        HistoryRow.objects.using(read_database())
        .filter(pk=status_id)
        .values_list("created", "order_id")
        .first()
    )
    if row is None:
        raise InvalidParameterError(
            "after", status_id, "the next_after of a previous page (no status row has this id)"
        )
    return Cursor(*row)
