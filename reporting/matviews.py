"""Read-only models over the reporting views, whose SQL lives in ``views_sql/``.

Why two models for one view: pgviews-redux pastes
``db_table`` into its DDL unquoted, so only ``reporting.order_latest_status``
creates and refreshes the view in the ``reporting`` schema; Django's ORM
quotes that same string as a single identifier and every ORM query fails.
So:

* :class:`OrderLatestStatusView` is the pgviews-redux declaration. It owns the
  DDL (``CREATE MATERIALIZED VIEW``, the unique index that concurrent refresh
  needs, the keyset index) and the refresh. Application code does not query it.
* :class:`OrderLatestStatus` maps the same relation for the ORM, with a
  ``db_table`` that the ORM quotes into ``"reporting"."order_latest_status"``.
  It is what selectors, the admin and users query, and it relates to
  :class:`~reporting.models.Order` both ways (``order.latest_status``).

We keep the view in the ``reporting`` schema (rather than in ``public`` with a
plain view in ``reporting`` over it) because BI tools are given that schema and
nothing else, and a second layer of views would be one more thing to rebuild
and grant on every change of the SQL.
"""

from __future__ import annotations

__all__ = [
    "SCHEMA",
    "VIEWS_SQL_DIR",
    "FreshnessView",
    "OrderDailyStatusLiveView",
    "OrderDailyStatusView",
    "OrderLatestStatus",
    "OrderLatestStatusLive",
    "OrderLatestStatusLiveView",
    "OrderLatestStatusView",
    "OrderStatusCountsLiveView",
    "OrderStatusCountsView",
    "PendingChangesView",
    "SnapshotStateView",
    "in_schema",
    "view_sql",
]

import re
from pathlib import Path
from typing import Any, NoReturn

from django.db import models
from django_pgviews import view as pg
from django_pgviews.managers import ReadOnlyViewManager

from reporting import conf
from reporting.choices import Status

VIEWS_SQL_DIR = Path(__file__).resolve().parent.parent / "views_sql"

# The PostgreSQL schema that holds every reporting view, and what BI roles see
# (REPORTING_SCHEMA). Read once, here: a model's db_table is fixed when it is declared.
SCHEMA = conf.schema()

# The view files name the schema "reporting", so that each of them reads (and runs
# in psql) as it is deployed by default; another REPORTING_SCHEMA replaces it.
_SCHEMA_IN_SQL = re.compile(r"\breporting\.(?=[a-z_])")


def in_schema(sql: str) -> str:
    """Return ``sql`` with the reporting views in the schema of ``REPORTING_SCHEMA``.

    SQL in this project names them ``reporting.<view>``, as deployed by default.
    """
    return _SCHEMA_IN_SQL.sub(f"{SCHEMA}.", sql) if SCHEMA != "reporting" else sql


def view_sql(name: str) -> str:
    """Return the SQL of one versioned view file, such as ``order_latest_status_v1``.

    Args:
        name: the file name in ``views_sql/`` without ``.sql``.

    Returns:
        The query, without a trailing semicolon, in the schema of ``REPORTING_SCHEMA``.
    """
    return in_schema((VIEWS_SQL_DIR / f"{name}.sql").read_text().strip().rstrip(";"))


class OrderLatestStatusView(pg.ReadOnlyMaterializedView):
    """pgviews-redux declaration of ``reporting.order_latest_status`` (DDL and refresh)."""

    sql = view_sql("order_latest_status_v1")
    # A UNIQUE index, so REFRESH ... CONCURRENTLY works and readers are never blocked.
    concurrent_index = "order_id"

    order_id = models.BigIntegerField(primary_key=True)
    status_id = models.BigIntegerField()
    status = models.CharField(max_length=16, choices=Status.choices)
    status_created = models.DateTimeField()

    class Meta:
        managed = False
        db_table = f"{SCHEMA}.order_latest_status"
        indexes = [
            # "Orders in status X, most recent status change first", keyset-paginated on
            # (status_created, order_id). status_id is included so that a page is an
            # index-only scan once the view has been vacuumed.
            models.Index(
                fields=["status", "-status_created", "-order_id"],
                include=["status_id"],
                name="order_latest_status_keyset",
            ),
        ]


def _label(model: str) -> str:
    return f"reporting.{model}"


class OrderStatusCountsView(pg.ReadOnlyMaterializedView):
    """``reporting.order_status_counts``: orders per latest status (and ``none``) as of the refresh."""

    sql = view_sql("order_status_counts_v1")
    dependencies = [_label("OrderLatestStatusView")]
    concurrent_index = "status"

    status = models.TextField(primary_key=True)
    orders = models.BigIntegerField()

    class Meta:
        managed = False
        db_table = f"{SCHEMA}.order_status_counts"


class OrderDailyStatusView(pg.ReadOnlyMaterializedView):
    """``reporting.order_daily_status``: orders per creation day (UTC) and latest status."""

    sql = view_sql("order_daily_status_v1")
    dependencies = [_label("OrderLatestStatusView")]
    concurrent_index = "day, status"

    day = models.DateField(primary_key=True)
    status = models.TextField()
    orders = models.BigIntegerField()

    class Meta:
        managed = False
        db_table = f"{SCHEMA}.order_daily_status"


class SnapshotStateView(pg.ReadOnlyView):
    """``reporting.snapshot_state``: the snapshot the materialized views hold (one row)."""

    sql = view_sql("snapshot_state_v2")
    # It names the materialized views' files, so it is built after them.
    dependencies = [
        _label("OrderLatestStatusView"),
        _label("OrderStatusCountsView"),
        _label("OrderDailyStatusView"),
    ]

    as_of = models.DateTimeField(primary_key=True)

    class Meta:
        managed = False
        db_table = f"{SCHEMA}.snapshot_state"


class PendingChangesView(pg.ReadOnlyView):
    """``reporting.pending_changes``: the orders changed since that snapshot."""

    sql = view_sql("pending_changes_v2")
    dependencies = [_label("SnapshotStateView")]

    order_id = models.BigIntegerField(primary_key=True)

    class Meta:
        managed = False
        db_table = f"{SCHEMA}.pending_changes"


class FreshnessView(pg.ReadOnlyView):
    """``reporting.freshness``: as-of time, age and changes since, for BI dashboards."""

    sql = view_sql("freshness_v2")
    dependencies = [_label("SnapshotStateView"), _label("PendingChangesView")]

    as_of = models.DateTimeField(primary_key=True)

    class Meta:
        managed = False
        db_table = f"{SCHEMA}.freshness"


_REALTIME_DEPENDENCIES = [_label("SnapshotStateView"), _label("PendingChangesView")]


class OrderLatestStatusLiveView(pg.ReadOnlyView):
    """``reporting.order_latest_status_live``: the latest status of every order, exact (real-time)."""

    sql = view_sql("order_latest_status_live_v1")
    dependencies = [_label("OrderLatestStatusView"), *_REALTIME_DEPENDENCIES]

    order_id = models.BigIntegerField(primary_key=True)

    class Meta:
        managed = False
        db_table = f"{SCHEMA}.order_latest_status_live"


class OrderStatusCountsLiveView(pg.ReadOnlyView):
    """``reporting.order_status_counts_live``: orders per latest status, exact (real-time)."""

    sql = view_sql("order_status_counts_live_v2")
    dependencies = [_label("OrderLatestStatusView"), _label("OrderStatusCountsView"), *_REALTIME_DEPENDENCIES]

    status = models.TextField(primary_key=True)

    class Meta:
        managed = False
        db_table = f"{SCHEMA}.order_status_counts_live"


class OrderDailyStatusLiveView(pg.ReadOnlyView):
    """``reporting.order_daily_status_live``: orders per day and latest status, exact (real-time)."""

    sql = view_sql("order_daily_status_live_v2")
    dependencies = [_label("OrderLatestStatusView"), _label("OrderDailyStatusView"), *_REALTIME_DEPENDENCIES]

    day = models.DateField(primary_key=True)

    class Meta:
        managed = False
        db_table = f"{SCHEMA}.order_daily_status_live"


class ReadOnlyModelMixin:
    """Refuse writes through model instances; the queryset refuses bulk writes."""

    def save(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise NotImplementedError(
            f"{type(self).__name__} is a read-only view; write OrderStatus rows instead"
        )

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise NotImplementedError(
            f"{type(self).__name__} is a read-only view; write OrderStatus rows instead"
        )


class LatestStatusRow(ReadOnlyModelMixin, models.Model):
    """The columns of ``order_latest_status`` and its real-time twin, for the ORM (read-only)."""

    status_id = models.BigIntegerField()
    status = models.CharField(max_length=16, choices=Status.choices)
    status_created = models.DateTimeField()

    objects = ReadOnlyViewManager()

    class Meta:
        abstract = True
        managed = False
        base_manager_name = "objects"

    def __str__(self) -> str:
        return f"Order {self.order_id}: {self.status}"  # type: ignore[attr-defined]


class OrderLatestStatus(LatestStatusRow):
    """The latest status of each order, as of the last refresh (read-only).

    Orders without any status row have no row here.
    """

    # No database constraint: a materialized view cannot carry a foreign key.
    order = models.OneToOneField(
        "reporting.Order",
        primary_key=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="latest_status",
    )

    class Meta(LatestStatusRow.Meta):
        # Quoted by the ORM into "reporting"."order_latest_status".
        db_table = f'{SCHEMA}"."order_latest_status'
        verbose_name = "order latest status"
        verbose_name_plural = "order latest statuses"


class OrderLatestStatusLive(LatestStatusRow):
    """The latest status of each order, exact at query time (read-only; ``realtime`` reads).

    The ORM's mapping of ``reporting.order_latest_status_live``: the materialized
    view corrected by the change log. Same columns as :class:`OrderLatestStatus`.
    """

    order = models.OneToOneField(
        "reporting.Order",
        primary_key=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="latest_status_live",
    )

    class Meta(LatestStatusRow.Meta):
        db_table = f'{SCHEMA}"."order_latest_status_live'
        verbose_name = "order latest status (real-time)"
        verbose_name_plural = "order latest statuses (real-time)"
