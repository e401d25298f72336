"""Reads: one order, its status history, and its current status by every read strategy."""

from __future__ import annotations

__all__ = ["HistoryEntry", "OrderDetail", "order_detail"]

import datetime as dt
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.db import connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper

from reporting import conf
from reporting.choices import Strategy
from reporting.exceptions import InvalidParameterError, UnknownOrderError
from reporting.routers import read_database
from reporting.selectors.freshness import ReadFreshness, read_freshness
from reporting.selectors.orders import NO_COLUMNS, OrderRow, columns_by_status_id
from reporting.source_install import COLUMN_TYPE_SQL
from reporting.sql_files import in_schema

MAX_ORDER_ID = 2**63 - 1

ORDER_SQL = "SELECT id, created, statement_timestamp() FROM reporting_order WHERE id = %s"
# The latest rows, newest first (one index range, read backwards, stopping at
# the limit); shown in the order that defines "latest": the last row is the
# order's status.
HISTORY_SQL = """
SELECT id, status::text, created FROM reporting_orderstatus WHERE order_id = %s
ORDER BY created DESC, id DESC LIMIT %s
"""
# How many rows the history holds in all (an index-only count of one range).
HISTORY_COUNT_SQL = "SELECT count(*) FROM reporting_orderstatus WHERE order_id = %s"
# Since when the order is in its latest status: the row right after its latest
# row of another status (or its first row). By index range from the latest, so
# it costs the final run, which may be longer than the rows shown.
STATUS_SINCE_SQL = """
WITH latest AS (
    SELECT status::text AS status FROM reporting_orderstatus WHERE order_id = %(key)s
    ORDER BY created DESC, id DESC LIMIT 1
), other AS (
    SELECT h.created, h.id FROM reporting_orderstatus AS h, latest
    WHERE h.order_id = %(key)s AND h.status::text IS DISTINCT FROM latest.status
    ORDER BY h.created DESC, h.id DESC LIMIT 1
)
SELECT coalesce(
    (SELECT h.created FROM reporting_orderstatus AS h, other AS o
     WHERE h.order_id = %(key)s AND (h.created, h.id) > (o.created, o.id)
     ORDER BY h.created, h.id LIMIT 1),
    (SELECT h.created FROM reporting_orderstatus AS h
     WHERE h.order_id = %(key)s AND NOT EXISTS (SELECT FROM other)
     ORDER BY h.created, h.id LIMIT 1)
)
"""
LATEST_SQL = {
    Strategy.SNAPSHOT: in_schema(
        "SELECT order_id, status_id, status::text, status_created, status_since "
        "FROM reporting.order_latest_status WHERE order_id = %s"
    ),
    # The real-time rows in the shape that takes the order_id filter into every
    # part, the full recompute after a TRUNCATE included (the view's does not).
    Strategy.REALTIME: (
        "SELECT order_id, status_id, status, status_created, status_since "
        "FROM public.reporting_latest_status_rows(NULL) WHERE order_id = %s"
    ),
}


@dataclass(frozen=True)
class HistoryEntry:
    """One status row of an order, and how long the order was in it (so far, for the latest)."""

    status_id: int
    status: str
    created: dt.datetime
    duration: dt.timedelta
    latest: bool
    #: The row's columns that ``REPORTING_SOURCE["columns"]`` declares to show.
    columns: Mapping[str, Any] = field(default_factory=lambda: NO_COLUMNS)


@dataclass(frozen=True)
class StrategyStatus:
    """The order's status as one strategy reads it (``row`` is ``None``: no status there)."""

    row: OrderRow | None
    freshness: ReadFreshness


@dataclass(frozen=True)
class OrderDetail:
    order_id: Any
    created: dt.datetime
    #: The latest ``history_limit`` rows at most, in the order that defines "latest".
    history: list[HistoryEntry]
    #: live, snapshot and realtime, in that order.
    by_strategy: dict[str, StrategyStatus]
    #: How many rows the history holds in all.
    history_count: int = 0
    #: The most rows ``history`` was allowed.
    history_limit: int = 0

    @property
    def history_omitted(self) -> int:
        """The earlier rows not in ``history``."""
        return self.history_count - len(self.history)


def key_parse(value: object) -> int | uuid.UUID:
    """A key as a URL or a caller gives it: an integer (1 to 2**63 - 1) or a UUID.

    Raises:
        UnknownOrderError: it is neither, so no order has it.
    """
    if isinstance(value, uuid.UUID) or (isinstance(value, int) and not isinstance(value, bool)):
        key: object = value
    elif isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 19:
        key = int(value)
    else:
        try:
            key = uuid.UUID(str(value))
        except ValueError:
            raise UnknownOrderError(value) from None
    if isinstance(key, int) and not 1 <= key <= MAX_ORDER_ID:
        raise UnknownOrderError(value)
    return key  # type: ignore[return-value]


def order_detail(*, order_id: object, history_limit: int | None = None) -> OrderDetail:
    """Return an order with its latest status history rows and its status by each strategy.

    The history is in the order that defines the latest status, greatest
    ``(created, id)`` last; a backfilled row (an older ``created`` inserted later)
    takes its place in time. Each entry says how long the order was in that
    status, until the next entry, or until now for the latest. A history has no
    bound of its own, so only its latest ``history_limit`` rows are read
    (default ``REPORTING_ORDER_HISTORY_ROWS``); ``history_count`` says how many
    there are in all.

    Raises:
        UnknownOrderError: no order has this id.
        InvalidParameterError: ``history_limit`` is not from 1 to ``conf.MAX_ORDER_HISTORY_ROWS``.
    """
    limit = conf.order_history_rows() if history_limit is None else history_limit
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= conf.MAX_ORDER_HISTORY_ROWS:
        raise InvalidParameterError(
            "history_limit", limit, f"an integer from 1 to {conf.MAX_ORDER_HISTORY_ROWS}"
        )
    key = key_parse(order_id)
    connection = connections[read_database()]
    if connection.in_atomic_block:
        return _read(connection, key, limit)
    # One snapshot for the history and every strategy, so that they agree.
    with transaction.atomic(using=connection.alias):
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        return _read(connection, key, limit)


def _read(connection: BaseDatabaseWrapper, order_id: int | uuid.UUID, limit: int) -> OrderDetail:
    with connection.cursor() as cursor:
        # The declared keys' type: a key of the other kind names no order.
        cursor.execute(COLUMN_TYPE_SQL, ["public.reporting_order", "id"])
        if (cursor.fetchone()[0] == "uuid") != isinstance(order_id, uuid.UUID):
            raise UnknownOrderError(order_id)
        cursor.execute(ORDER_SQL, [order_id])
        found = cursor.fetchone()
        if found is None:
            raise UnknownOrderError(order_id)
        _, created, now = found
        cursor.execute(HISTORY_SQL, [order_id, limit])
        rows = cursor.fetchall()[::-1]
        count = len(rows)
        if count == limit:
            cursor.execute(HISTORY_COUNT_SQL, [order_id])
            count = cursor.fetchone()[0]
        by_strategy = {}
        live_row = None
        if rows:
            status_id, status, latest_created = rows[-1]
            cursor.execute(STATUS_SINCE_SQL, {"key": order_id})
            live_row = OrderRow(order_id, status_id, status, latest_created, cursor.fetchone()[0])
        by_strategy[Strategy.LIVE.value] = StrategyStatus(live_row, read_freshness(Strategy.LIVE))
        for strategy in (Strategy.SNAPSHOT, Strategy.REALTIME):
            freshness = read_freshness(strategy)
            cursor.execute(LATEST_SQL[strategy], [order_id])
            row = cursor.fetchone()
            by_strategy[strategy.value] = StrategyStatus(OrderRow(*row) if row else None, freshness)
    # In the same transaction, so as of the same snapshot.
    shown = columns_by_status_id([row[0] for row in rows])
    history = [
        HistoryEntry(
            status_id=status_id,
            status=status,
            created=at,
            duration=(rows[i + 1][2] if i + 1 < len(rows) else now) - at,
            latest=i + 1 == len(rows),
            columns=shown[status_id],
        )
        for i, (status_id, status, at) in enumerate(rows)
    ]
    return OrderDetail(
        order_id=order_id,
        created=created,
        history=history,
        by_strategy=by_strategy,
        history_count=count,
        history_limit=limit,
    )
