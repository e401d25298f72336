"""What ``manage.py bench`` times: each read, by each approach a user could take.

The approaches: the ``Subquery`` annotation that the ORM leads to (the baseline),
a hand-written ``DISTINCT ON``, the selectors with each strategy, and the plain
SQL a BI tool sends to the real-time views.
"""

from __future__ import annotations

__all__ = ["ANALYTICS", "BASELINE", "BI_VIEW", "READS", "read_cases"]

from collections.abc import Callable
from typing import Any

from django.db import connection, transaction
from django.db.models import Count, OuterRef, Subquery

from examples.shop.models import Order, OrderStatus, Status
from reporting import selectors
from reporting.bi import RoleSettings
from reporting.choices import Strategy
from reporting.sql_files import in_schema


def fetchall(sql: str, params: Any = None) -> list[tuple]:
    """Run ``sql`` on Django's connection and return its rows."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def bi_fetchall(sql: str, params: Any = None) -> list[tuple]:
    """Run ``sql`` as a BI role would: with the settings ``bi_role create`` gives one (``jit`` off)."""
    with transaction.atomic(), connection.cursor() as cursor:
        for name, value in RoleSettings().parameters().items():
            cursor.execute("SELECT set_config(%s, %s, true)", [name, value])
        cursor.execute(sql, params)
        return cursor.fetchall()


# --- The approaches users would write by hand --------------------------------------------------------------

BASELINE = "subquery"


def _annotated() -> Any:
    """The plain ORM answer: every order annotated with its latest status (a correlated subquery)."""
    latest = OrderStatus.objects.filter(order=OuterRef("pk")).order_by("-created", "-id")
    return Order.objects.annotate(
        current_status=Subquery(latest.values("status")[:1]),
        current_created=Subquery(latest.values("created")[:1]),
    )


DISTINCT_ON = """
    SELECT * FROM (
        SELECT DISTINCT ON (order_id) order_id, id, status, created
        FROM reporting_example_orderstatus ORDER BY order_id, created DESC, id DESC
    ) AS latest
"""
DISTINCT_ON_IDS = f"SELECT order_id FROM ({DISTINCT_ON}) AS d WHERE status = %s"  # noqa: S608 - constants only
DISTINCT_ON_COUNTS = f"SELECT status, count(*) FROM ({DISTINCT_ON}) AS d GROUP BY 1"  # noqa: S608


BI_VIEW = "BI view (SQL)"
BI_PAGE = in_schema(
    "SELECT order_id, status_created FROM reporting.order_latest_status_live WHERE status = %s "
    "ORDER BY status_created DESC, order_id DESC"
)


ANALYTICS = ("transitions per day, 30 days", "time to complete/cancel, 8 weeks")
READS = ("page of 100", "deep page of 100", "all cancelled ids", "counts per status", *ANALYTICS)


def read_cases(cursor_at: selectors.Cursor) -> dict[str, dict[str, Callable[[], Any]]]:
    cancelled = Status.CANCELLED

    def selector_cases(strategy: Strategy) -> dict[str, Callable[[], Any]]:
        return {
            "page of 100": lambda: selectors.order_list_by_status(status=cancelled, strategy=strategy),
            "deep page of 100": lambda: selectors.order_list_by_status(
                status=cancelled, strategy=strategy, after=cursor_at
            ),
            "all cancelled ids": lambda: selectors.order_ids_by_status(status=cancelled, strategy=strategy),
            "counts per status": lambda: selectors.order_status_counts(strategy=strategy),
            # Status analytics: no Subquery or DISTINCT ON twin; live is their baseline.
            ANALYTICS[0]: lambda: selectors.order_transitions_daily(days=30, strategy=strategy),
            ANALYTICS[1]: lambda: selectors.order_transition_times(weeks=8, strategy=strategy),
        }

    annotated = _annotated().filter(current_status=cancelled).order_by("-current_created", "-id")
    deep = annotated.filter(current_created__lte=cursor_at.status_created).exclude(
        current_created=cursor_at.status_created, id__gte=cursor_at.order_id
    )
    return {
        BASELINE: {
            "page of 100": lambda: list(annotated.values_list("id", "current_created")[:100]),
            "deep page of 100": lambda: list(deep.values_list("id", "current_created")[:100]),
            "all cancelled ids": lambda: list(
                _annotated().filter(current_status=cancelled).values_list("id")
            ),
            "counts per status": lambda: list(
                _annotated().order_by().values("current_status").annotate(n=Count("*"))
            ),
        },
        "distinct on": {
            "page of 100": lambda: fetchall(
                DISTINCT_ON + " WHERE status = %s ORDER BY created DESC, order_id DESC LIMIT 100", [cancelled]
            ),
            "deep page of 100": lambda: fetchall(
                DISTINCT_ON + " WHERE status = %s AND (created, order_id) < (%s, %s) "
                "ORDER BY created DESC, order_id DESC LIMIT 100",
                [cancelled, cursor_at.status_created, cursor_at.order_id],
            ),
            "all cancelled ids": lambda: fetchall(DISTINCT_ON_IDS, [cancelled]),
            "counts per status": lambda: fetchall(DISTINCT_ON_COUNTS),
        },
        "live": selector_cases(Strategy.LIVE),
        "snapshot": selector_cases(Strategy.SNAPSHOT),
        "realtime": selector_cases(Strategy.REALTIME),
        # What a BI tool sends: plain SQL on the real-time views.
        BI_VIEW: {
            "page of 100": lambda: bi_fetchall(BI_PAGE + " LIMIT 100", [cancelled]),
            "deep page of 100": lambda: bi_fetchall(
                BI_PAGE.replace("ORDER BY", "AND (status_created, order_id) < (%s, %s) ORDER BY")
                + " LIMIT 100",
                [cancelled, cursor_at.status_created, cursor_at.order_id],
            ),
            "all cancelled ids": lambda: bi_fetchall(
                in_schema("SELECT order_id FROM reporting.order_latest_status_live WHERE status = %s"),
                [cancelled],
            ),
            "counts per status": lambda: bi_fetchall(
                in_schema("SELECT status, orders FROM reporting.order_status_counts_live")
            ),
        },
    }
