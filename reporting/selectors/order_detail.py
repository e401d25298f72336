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

from reporting.choices import Strategy
from reporting.exceptions import UnknownOrderError
from reporting.routers import read_database
from reporting.selectors.freshness import ReadFreshness, read_freshness
from reporting.selectors.orders import NO_COLUMNS, OrderRow, columns_by_status_id
from reporting.source_install import COLUMN_TYPE_SQL
from reporting.sql_files import in_schema

MAX_ORDER_ID = 2**63 - 1

ORDER_SQL = "SELECT id, created, statement_timestamp() FROM reporting_order WHERE id = %s"
# In the order that defines "latest": the last row is the order's status.
HISTORY_SQL = """
SELECT id, status::text, created FROM reporting_orderstatus WHERE order_id = %s ORDER BY created, id
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
    history: list[HistoryEntry]
    #: live, snapshot and realtime, in that order.
    by_strategy: dict[str, StrategyStatus]


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


def order_detail(*, order_id: object) -> OrderDetail:
    """Return an order with its status history and its status by each strategy.

    The history is in the order that defines the latest status, greatest
    ``(created, id)`` last; a backfilled row (an older ``created`` inserted later)
    takes its place in time. Each entry says how long the order was in that
    status, until the next entry, or until now for the latest.

    Raises:
        UnknownOrderError: no order has this id.
    """
    key = key_parse(order_id)
    connection = connections[read_database()]
    if connection.in_atomic_block:
        return _read(connection, key)
    # One snapshot for the history and every strategy, so that they agree.
    with transaction.atomic(using=connection.alias):
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        return _read(connection, key)


def _status_since(rows: list[tuple[int, str, dt.datetime]]) -> dt.datetime:
    """When the order entered its latest status: the first row of its final run of equal statuses.

    ``rows`` are ``(id, status, created)`` in the order that defines the latest.
    """
    first = len(rows) - 1
    while first > 0 and rows[first - 1][1] == rows[-1][1]:
        first -= 1
    return rows[first][2]


def _read(connection: BaseDatabaseWrapper, order_id: int | uuid.UUID) -> OrderDetail:
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
        cursor.execute(HISTORY_SQL, [order_id])
        rows = cursor.fetchall()
        by_strategy = {}
        live_row = None
        if rows:
            status_id, status, created = rows[-1]
            live_row = OrderRow(order_id, status_id, status, created, _status_since(rows))
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
    return OrderDetail(order_id=order_id, created=created, history=history, by_strategy=by_strategy)
