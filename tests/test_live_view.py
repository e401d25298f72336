"""The real-time SQL in its shapes (the BI view, the page and rows functions) against DISTINCT ON.

Exactness under concurrent writers, folds and refreshes, read in one snapshot;
and the plans that make the view fit for BI tools: a page reads about n rows of
each part, a point lookup one index range, and parallel plans stay possible.
"""

from __future__ import annotations

import json
import random
import threading

import pytest
from django.db import connection, transaction

from examples.shop import services as shop_services
from reporting import services
from tests.factories import TODAY, change, reset, seeded
from tests.interleaving import assert_interleaved_exact, interleave

pytestmark = pytest.mark.django_db(transaction=True)

# status_since written another way than the views do: the first created of the
# rows that no row of another status follows.
BRUTE = """
SELECT b.order_id, b.id, b.status::text, b.created, (
    SELECT min(r.created) FROM reporting_example_orderstatus AS r
    WHERE r.order_id = b.order_id AND NOT EXISTS (
        SELECT FROM reporting_example_orderstatus AS x
        WHERE x.order_id = r.order_id AND x.status <> r.status AND (x.created, x.id) > (r.created, r.id)
    )
) FROM (
    SELECT DISTINCT ON (order_id) order_id, id, status, created FROM reporting_example_orderstatus
    ORDER BY order_id, created DESC, id DESC
) AS b
"""
VIEW = (
    "SELECT order_id, status_id, status::text, status_created, status_since "
    "FROM reporting.order_latest_status_live"
)


def _rows(cursor, sql, params=()):
    cursor.execute(sql, params)
    return cursor.fetchall()


def _all_shapes_agree(cursor) -> list[str]:
    """Every shape of real-time read against DISTINCT ON, in the caller's snapshot."""
    problems = []
    brute = sorted(_rows(cursor, BRUTE))
    if sorted(_rows(cursor, VIEW)) != brute:
        problems.append("whole view")
    for status in ("pending", "complete", "cancelled"):
        exp = sorted((r for r in brute if r[2] == status), key=lambda r: (r[3], r[0]), reverse=True)
        for direction, want in (("DESC", exp[:20]), ("ASC", exp[::-1][:20])):
            got = _rows(
                cursor,
                f"{VIEW} WHERE status = %s "
                f"ORDER BY status_created {direction}, order_id {direction} LIMIT 20",
                [status],
            )
            if got != want:
                problems.append(f"view page {status} {direction}")
        rows = _rows(cursor, "SELECT * FROM public.reporting_latest_status_rows(%s)", [status])
        if sorted(rows) != sorted(exp):
            problems.append(f"rows() {status}")
        page = _rows(
            cursor, "SELECT * FROM public.reporting_latest_status_page(%s, NULL, NULL, NULL, 20)", [status]
        )
        if page != exp[:20]:
            problems.append(f"page() {status}")
    if sorted(_rows(cursor, "SELECT * FROM public.reporting_latest_status_rows(NULL)")) != brute:
        problems.append("rows(NULL)")
    for row in brute[:3] + brute[-3:]:
        if _rows(cursor, f"{VIEW} WHERE order_id = %s", [row[0]]) != [row]:
            problems.append(f"view point {row[0]}")
        point = "SELECT * FROM public.reporting_latest_status_rows(NULL) WHERE order_id = %s"
        if _rows(cursor, point, [row[0]]) != [row]:
            problems.append(f"rows(NULL) point {row[0]}")
    return problems


def test_every_shape_agrees_with_distinct_on_while_writers_folds_and_refreshes_run():
    """Ties, deleted latest rows, emptied orders, moved and edited rows, under folds and refreshes."""
    reset()
    shop_services.orders_seed(orders=1500, seed=5, until=TODAY)
    services.views_refresh()

    def writer() -> None:
        rng = random.Random(threading.get_ident())
        for _ in range(1500):
            order_id = rng.randint(1, 1500)
            with transaction.atomic(), connection.cursor() as cursor:
                kind = rng.random()
                if kind < 0.6:
                    cursor.execute(
                        "INSERT INTO reporting_example_orderstatus (order_id, created, status) "
                        "VALUES (%s, now() - %s * interval '1 day', %s)",
                        [
                            order_id,
                            rng.choice([0, 0, 0, 1, 2]),
                            rng.choice(["pending", "complete", "cancelled"]),
                        ],
                    )
                elif kind < 0.7:  # a tie with the latest row
                    cursor.execute(
                        "INSERT INTO reporting_example_orderstatus (order_id, created, status) "
                        "SELECT order_id, created, 'cancelled' FROM reporting_example_orderstatus "
                        "WHERE order_id = %s ORDER BY created DESC, id DESC LIMIT 1",
                        [order_id],
                    )
                elif kind < 0.8:  # the latest row deleted
                    cursor.execute(
                        "DELETE FROM reporting_example_orderstatus WHERE id = (SELECT id FROM "
                        "reporting_example_orderstatus "
                        "WHERE order_id = %s ORDER BY created DESC, id DESC LIMIT 1)",
                        [order_id],
                    )
                elif kind < 0.87:  # every status row of the order deleted
                    cursor.execute(
                        "DELETE FROM reporting_example_orderstatus WHERE order_id = %s", [order_id]
                    )
                elif kind < 0.94:  # status rows moved to another order
                    cursor.execute(
                        "UPDATE reporting_example_orderstatus SET order_id = %s WHERE order_id = %s",
                        [rng.randint(1, 1500), order_id],
                    )
                else:  # a status edited in place
                    cursor.execute(
                        "UPDATE reporting_example_orderstatus SET status = 'pending' WHERE id = "
                        "(SELECT id FROM "
                        "reporting_example_orderstatus WHERE order_id = %s ORDER BY id LIMIT 1)",
                        [order_id],
                    )

    def reader() -> list[str]:
        with connection.cursor() as cursor:
            return _all_shapes_agree(cursor)

    assert_interleaved_exact(interleave([writer, writer], reader, refresh_pause=0.7))


def _plan(sql: str) -> dict:
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql)
        return cursor.fetchone()[0][0]["Plan"]


def _rows_read(plan: dict, relation: str) -> float:
    """Rows that scans of ``relation`` returned, outside sub-plans (the parts of the view)."""
    total = 0.0
    if plan.get("Parent Relationship") in ("InitPlan", "SubPlan"):
        return 0.0
    if plan["Node Type"].endswith("Scan") and relation in (
        plan.get("Relation Name"),
        plan.get("Function Name"),
    ):
        total += (plan.get("Actual Rows", 0) + plan.get("Rows Removed by Filter", 0)) * plan.get(
            "Actual Loops", 0
        )
    for child in plan.get("Plans", []):
        total += _rows_read(child, relation)
    return total


PAGE = (
    "SELECT * FROM reporting.order_latest_status_live WHERE status = 'cancelled' "
    "ORDER BY status_created {d}, order_id {d} LIMIT 10"
)


@pytest.mark.parametrize("direction", ["DESC", "ASC"])
def test_a_view_page_reads_about_n_overlay_rows(direction):
    """A page from the view reads about n rows of the overlay, in either direction."""
    seeded(3000)
    change(range(1, 3001, 2), status="cancelled", seconds=5)  # 1500 cancelled orders in the overlay
    assert services.overlay_fold().overlay_orders == 1500
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE reporting_overlayorder")
    read = _rows_read(_plan(PAGE.format(d=direction)), "reporting_overlayorder")
    assert read <= 100, f"part 2 read {read:.0f} overlay rows for a page of 10"


def test_a_point_lookup_is_an_index_lookup_even_after_a_truncate():
    """The selectors' point lookup (rows(NULL) with order_id = X) reads one order's rows, also when
    everything is recomputed; the view's full recompute takes no filter (the price of its pages)."""
    seeded(3000)
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO reporting_orderchange (order_ids, source) VALUES (NULL, 'truncate')")
        cursor.execute("SELECT needs_full_recompute FROM reporting_snapshot_state")
        assert cursor.fetchone() == (True,)
    plan = _plan("SELECT * FROM public.reporting_latest_status_rows(NULL) WHERE order_id = 42")
    read = _rows_read(plan, "reporting_example_orderstatus")
    assert read <= 10, f"the point lookup read {read:.0f} status rows"


def test_the_live_view_allows_parallel_plans():
    """Nothing in the view keeps PostgreSQL from a parallel plan for a large join."""
    seeded(200)
    with connection.cursor() as cursor:
        for setting in (
            "parallel_setup_cost = 0",
            "parallel_tuple_cost = 0",
            "min_parallel_table_scan_size = 0",
        ):
            cursor.execute(f"SET {setting}")
        cursor.execute(
            "EXPLAIN (FORMAT JSON) SELECT count(*) FROM reporting.orders AS o "
            "JOIN reporting.order_latest_status_live AS l USING (order_id)"
        )
        plan = json.dumps(cursor.fetchone()[0])
        for setting in ("parallel_setup_cost", "parallel_tuple_cost", "min_parallel_table_scan_size"):
            cursor.execute(f"RESET {setting}")
    assert "Gather" in plan
