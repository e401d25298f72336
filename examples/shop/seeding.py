"""Writes: generated demo and benchmark data."""

from __future__ import annotations

__all__ = ["SEED_SPAN", "SeedResult", "orders_seed", "orders_seed_if_empty"]

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from examples.shop.models import Order
from reporting.exceptions import InvalidParameterError

logger = logging.getLogger(__name__)

# Shares of the generated histories (see seed_orders in the README):
#   [pending, complete]             63 %  paid
#   [pending, complete, cancelled]   7 %  paid, then refunded (10 % of the paid orders)
#   [pending, cancelled]            20 %  payment failed
#   [pending]                       10 %  still waiting for payment
# Events that would fall after `until` have not happened yet, so recent orders
# are more often pending, as in a real shop.
PAID_SHARE = 0.70
REFUNDED_SHARE = 0.07
FAILED_SHARE = 0.20
SEED_SPAN = dt.timedelta(days=180)

# One statement per batch. Every pseudo-random number comes from md5(seed:index),
# so a seed gives the same histories on every run and every server (random()
# with setseed() would depend on the plan). The four 32-bit slices of the hash
# are four independent uniforms in [0, 1). Timestamps are whole seconds, like
# many real clocks, so equal timestamps occur.
SEED_BATCH_SQL = """
WITH src AS (
    SELECT
        %(id_offset)s + g AS id,
        date_trunc('second', %(until)s::timestamptz - u1 * %(span)s::interval) AS created,
        u2 AS outcome,
        make_interval(secs => 5 + floor(u3 * 3 * 3600)) AS pay_delay,
        make_interval(secs => 3600 + floor(u4 * 30 * 86400)) AS refund_delay
    FROM (
        SELECT
            g,
            ('x' || substr(h, 1, 8))::bit(32)::bigint / 4294967296.0 AS u1,
            ('x' || substr(h, 9, 8))::bit(32)::bigint / 4294967296.0 AS u2,
            ('x' || substr(h, 17, 8))::bit(32)::bigint / 4294967296.0 AS u3,
            ('x' || substr(h, 25, 8))::bit(32)::bigint / 4294967296.0 AS u4
        FROM (
            SELECT g, md5(%(seed)s::text || ':' || g::text) AS h
            FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS g
        ) AS hashed
    ) AS uniforms
),
new_orders AS (
    INSERT INTO reporting_example_order (id, created) SELECT id, created FROM src
),
events AS (
    SELECT id, created, 'pending' AS status, 1 AS step FROM src
    UNION ALL
    SELECT id, created + pay_delay, 'complete', 2 FROM src WHERE outcome < %(paid)s
    UNION ALL
    SELECT id, created + pay_delay + refund_delay, 'cancelled', 3 FROM src WHERE outcome < %(refunded)s
    UNION ALL
    SELECT id, created + pay_delay, 'cancelled', 2 FROM src
    WHERE outcome >= %(paid)s AND outcome < %(paid)s + %(failed)s
)
INSERT INTO reporting_example_orderstatus (order_id, created, status)
SELECT id, created, status FROM events
WHERE created <= %(until)s
ORDER BY id, step
"""


@dataclass(frozen=True)
class SeedResult:
    """What :func:`orders_seed` wrote."""

    orders: int
    statuses: int
    first_order_id: int
    last_order_id: int


def orders_seed(
    *,
    orders: int,
    seed: int = 0,
    until: dt.datetime | None = None,
    batch_size: int = 100_000,
    progress: Callable[[int, int], None] | None = None,
) -> SeedResult:
    """Generate orders with realistic status histories, set-based, in one transaction.

    Args:
        orders: how many orders to add (after the existing ones).
        seed: the same seed gives the same histories.
        until: the newest possible timestamp; histories spread over the 180 days
            before it. Defaults to the start of the current day (UTC), so that runs
            on the same day are identical.
        batch_size: orders per statement.
        progress: called with (orders done, orders in total) after each batch.

    Returns:
        The counts and the id range written.

    Raises:
        InvalidParameterError: ``orders`` or ``batch_size`` is not a positive integer.
    """
    if not isinstance(orders, int) or isinstance(orders, bool) or orders < 1:
        raise InvalidParameterError("orders", orders, "a positive integer")
    if batch_size < 1:
        raise InvalidParameterError("batch_size", batch_size, "a positive integer")
    if until is None:
        until = timezone.now().astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)

    statuses = 0
    with transaction.atomic(), connection.cursor() as cursor:
        # Serialise concurrent seeders: both would take the same explicit ids.
        cursor.execute("LOCK TABLE reporting_example_order IN SHARE ROW EXCLUSIVE MODE")
        cursor.execute("SELECT coalesce(max(id), 0) FROM reporting_example_order")
        id_offset = cursor.fetchone()[0]
        for first in range(1, orders + 1, batch_size):
            last = min(first + batch_size - 1, orders)
            params: dict[str, Any] = {
                "id_offset": id_offset,
                "first": first,
                "last": last,
                "seed": seed,
                "until": until,
                "span": SEED_SPAN,
                "paid": PAID_SHARE,
                "refunded": REFUNDED_SHARE,
                "failed": FAILED_SHARE,
            }
            cursor.execute(SEED_BATCH_SQL, params)
            statuses += cursor.rowcount
            if progress is not None:
                progress(last, orders)
        # The ids were given explicitly: move the identity past them.
        cursor.execute(
            "SELECT setval(pg_get_serial_sequence('reporting_example_order', 'id'), %s)", [id_offset + orders]
        )
        cursor.execute("ANALYZE reporting_example_order")
        cursor.execute("ANALYZE reporting_example_orderstatus")
    logger.debug("Seeded %d orders with %d status rows (seed %s)", orders, statuses, seed)
    return SeedResult(
        orders=orders, statuses=statuses, first_order_id=id_offset + 1, last_order_id=id_offset + orders
    )


def orders_seed_if_empty(*, orders: int, seed: int = 0) -> bool:
    """Seed ``orders`` demo orders when there are none yet.

    Returns:
        Whether it seeded.
    """
    if Order.objects.exists():
        return False
    orders_seed(orders=orders, seed=seed)
    return True


# A shop at work: the newest orders move on, one status row each, as of now.
PROGRESS_SQL = """
INSERT INTO reporting_example_orderstatus (order_id, created, status)
SELECT o.id, now(), CASE WHEN o.id %% 4 = 0 THEN 'cancelled' ELSE 'complete' END
FROM (SELECT id FROM reporting_example_order ORDER BY id DESC LIMIT %s) AS o
"""


def orders_seed_progress(*, orders: int) -> int:
    """Give the newest ``orders`` orders a new status now (complete, a quarter cancelled), in one statement.

    For demonstrations on seeded data only: it writes status rows that no shop made.

    Returns:
        How many orders changed (fewer if there are fewer orders).
    """
    with connection.cursor() as cursor:
        cursor.execute(PROGRESS_SQL, [orders])
        return cursor.rowcount
