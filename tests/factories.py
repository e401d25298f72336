"""Test data: status histories written straight into the source tables."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from django.db import connection

from reporting.choices import Status
from reporting.models import Order, OrderStatus

EPOCH = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class StatusRow:
    id: int
    order_id: int
    created: dt.datetime
    status: str


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


def brute_force_latest(rows: Sequence[StatusRow]) -> dict[int, StatusRow]:
    """The latest status of each order by the definition: greatest (created, id)."""
    latest: dict[int, StatusRow] = {}
    for row in rows:
        best = latest.get(row.order_id)
        if best is None or (row.created, row.id) > (best.created, best.id):
            latest[row.order_id] = row
    return latest


def brute_force_lists(rows: Sequence[StatusRow]) -> dict[str, list[tuple]]:
    """Per status, ``(order_id, status_id, status, status_created)`` of the orders whose
    latest status it is, most recent status change first: what every list read must return."""
    latest = brute_force_latest(rows).values()
    return {
        status: sorted(
            [(r.order_id, r.id, r.status, r.created) for r in latest if r.status == status],
            key=lambda t: (t[3], t[0]),
            reverse=True,
        )
        for status in Status.values
    }


def all_status_rows() -> list[StatusRow]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, order_id, created, status FROM reporting_orderstatus")
        return [StatusRow(*r) for r in cursor.fetchall()]
