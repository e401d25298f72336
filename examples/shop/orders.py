"""Writes: orders and their status history."""

from __future__ import annotations

__all__ = ["ORDER_LOCK_SQL", "order_create", "order_status_record"]

import datetime as dt
import logging

from django.db import connection, transaction
from django.utils import timezone

from examples.shop.models import Order, OrderStatus, Status
from reporting.exceptions import UnknownOrderError

logger = logging.getLogger(__name__)


@transaction.atomic
def order_create(*, created: dt.datetime | None = None) -> Order:
    """Create an order with its initial ``pending`` status.

    Args:
        created: when the order was placed; now by default.

    Returns:
        The new order.
    """
    created = created or timezone.now()
    order = Order.objects.create(created=created)
    OrderStatus.objects.create(order=order, created=created, status=Status.PENDING)
    return order


ORDER_LOCK_SQL = "SELECT 1 FROM reporting_example_order WHERE id = %s FOR KEY SHARE"


@transaction.atomic
def order_status_record(*, order_id: int, status: str, created: dt.datetime | None = None) -> OrderStatus:
    """Append a status to an order's history.

    Args:
        order_id: the order's id.
        status: ``pending``, ``complete`` or ``cancelled``.
        created: when the change happened; now by default. An older timestamp is a
            backfill: it is recorded but does not become the latest status.

    Returns:
        The new status row.

    Raises:
        InvalidStatusError: ``status`` is not one of the three statuses. Nothing is written.
        UnknownOrderError: no order has ``order_id``. Nothing is written.
    """
    status = Status.parse(status)
    # The foreign key is checked only at commit (Django makes it DEFERRABLE), which
    # would surface as an IntegrityError far from here. Lock the order row against
    # deletion instead (FOR KEY SHARE does not block other status writers) and
    # report a missing order precisely.
    if not isinstance(order_id, int) or isinstance(order_id, bool):
        raise UnknownOrderError(order_id)
    with connection.cursor() as cursor:
        cursor.execute(ORDER_LOCK_SQL, [order_id])
        if cursor.fetchone() is None:
            raise UnknownOrderError(order_id)
    return OrderStatus.objects.create(order_id=order_id, status=status, created=created or timezone.now())
