"""The reporting views, declared for pgviews-redux, with their comments for BI catalogs.

Their SQL is in ``views_sql/`` (:mod:`reporting.sql_files` reads it); the models
the ORM queries are in :mod:`reporting.read_models`.

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
  :class:`KeyRow` both ways (``key.latest_status``).

We keep the view in the ``reporting`` schema (rather than in ``public`` with a
plain view in ``reporting`` over it) because BI tools are given that schema and
nothing else, and a second layer of views would be one more thing to rebuild
and grant on every change of the SQL.
"""

from __future__ import annotations

__all__ = [
    "FreshnessView",
    "OrderDailyStatusLiveView",
    "OrderDailyStatusView",
    "OrderLatestStatusLiveView",
    "OrderLatestStatusView",
    "OrderStatusCountsLiveView",
    "OrderStatusCountsView",
    "OrderStatusHistoryView",
    "OrderStatusTransitionsLiveView",
    "OrderStatusTransitionsView",
    "OrderTransitionTimesWeeklyLiveView",
    "OrderTransitionsDailyLiveView",
    "OrderTransitionsDailyView",
    "OrdersView",
    "PendingChangesView",
    "SnapshotStateView",
    "reporting_views",
]

from typing import Any

from django.db import models
from django_pgviews import view as pg

from reporting.sql_files import SCHEMA, view_sql


class Migrated:
    """Synced only where the app is migrated: ``migrate reporting zero`` leaves nothing to read.

    pgviews-redux syncs every view after every ``migrate``, and a view's
    ``get_view_connection`` is its documented way to skip a database.
    """

    @classmethod
    def get_view_connection(cls, using: str, restricted_mode: bool = True) -> Any:
        from reporting.source_install import app_migrated

        connection = super().get_view_connection(using, restricted_mode=restricted_mode)  # type: ignore[misc]
        if connection is not None and restricted_mode and not app_migrated(using):
            return None
        return connection


def reporting_views() -> list[type[pg.MaterializedView]]:
    """Return every reporting materialized view, dependencies first."""
    from django.apps import apps
    from django_pgviews.dependencies import reorder_by_dependencies

    views = [m for m in apps.get_models() if isinstance(m, type) and issubclass(m, pg.MaterializedView)]
    return [v for v in reorder_by_dependencies(views) if issubclass(v, pg.MaterializedView)]


# Comments on the views and their columns, for BI tools' catalogs (Metabase and
# Superset show them): Meta.db_table_comment and each field's db_comment, applied
# with COMMENT ON after every view sync (reporting.services.bi.bi_comments_apply).
# They say "order" for a key of the declared source: reporting.wording.comment puts
# the declared noun in its place ("ticket"), so never use the word for a sequence,
# and name no example status or what it means to a shop ("paid", "refunded").
ORDER_ID = "The order (its key in the declared source)."
STATUS_ID = "The order's latest status row: the greatest (created, id) of its rows."
STATUS = "The latest status: one of the declared statuses (REPORTING_SOURCE)."
STATUS_CREATED = (
    "The created time of the order's latest status row. A row that repeats the status before it "
    "moves it: when the order entered the status is status_since."
)
STATUS_SINCE = (
    "When the order entered its current status: the created time of the first row of its final run "
    "of rows with this status (a repeated status row does not move it)."
)
COUNT_STATUS = "A latest status, or NULL (empty) for the orders that have no status row."
ORDERS = "How many orders."
DAY = "The day the orders were created (UTC)."
TRANSITION_STATUS_ID = "The status row that changed the status."
FROM_STATUS = "The status before the change."
TO_STATUS = "The status after the change."
TRANSITION_CREATED = "When the status changed (that status row's created time)."
WEEK = "The week of the change: its Monday (UTC)."
SINCE_FIRST = "The time from the order's first status row to this change."
TRANSITION_DAY = "The day of the change (UTC)."
TRANSITIONS = "How many status changes."


class OrderLatestStatusView(Migrated, pg.ReadOnlyMaterializedView):
    """pgviews-redux declaration of ``reporting.order_latest_status`` (DDL and refresh)."""

    sql = view_sql("order_latest_status")
    # A UNIQUE index, so REFRESH ... CONCURRENTLY works and readers are never blocked.
    concurrent_index = "order_id"

    order_id = models.BigIntegerField(primary_key=True, db_comment=ORDER_ID)
    status_id = models.BigIntegerField(db_comment=STATUS_ID)
    status = models.CharField(max_length=16, db_comment=STATUS)
    status_created = models.DateTimeField(db_comment=STATUS_CREATED)
    status_since = models.DateTimeField(db_comment=STATUS_SINCE)

    class Meta:
        managed = False
        db_table = f"{SCHEMA}.order_latest_status"
        db_table_comment = (
            "Each order's latest status as of the last refresh (see freshness); orders without a status "
            "have no row. Fastest; for exact numbers use order_latest_status_live."
        )
        indexes = [
            # "Orders in status X, most recent status row first", keyset-paginated on
            # (status_created, order_id). status_id and status_since are included so
            # that a page is an index-only scan once the view has been vacuumed. Lists
            # stay in the order of status_created (the latest row's time), which this
            # index serves; status_since is shown, not sorted on.
            models.Index(
                fields=["status", "-status_created", "-order_id"],
                include=["status_id", "status_since"],
                name="order_latest_status_keyset",
            ),
        ]


def _label(model: str) -> str:
    return f"reporting.{model}"


class OrderStatusCountsView(Migrated, pg.ReadOnlyMaterializedView):
    """``reporting.order_status_counts``: orders per latest status (and ``none``) as of the refresh."""

    sql = view_sql("order_status_counts")
    dependencies = [_label("OrderLatestStatusView")]
    concurrent_index = "status"

    status = models.TextField(primary_key=True, db_comment=COUNT_STATUS)
    orders = models.BigIntegerField(db_comment=ORDERS)

    class Meta:
        managed = False
        db_table = f"{SCHEMA}.order_status_counts"
        db_table_comment = "Orders per latest status as of the last refresh; exact: order_status_counts_live."


class OrderDailyStatusView(Migrated, pg.ReadOnlyMaterializedView):
    """``reporting.order_daily_status``: orders per creation day (UTC) and latest status."""

    sql = view_sql("order_daily_status")
    dependencies = [_label("OrderLatestStatusView")]
    concurrent_index = "day, status"

    day = models.DateField(primary_key=True, db_comment=DAY)
    status = models.TextField(db_comment=COUNT_STATUS)
    orders = models.BigIntegerField(db_comment=ORDERS)

    class Meta:
        managed = False
        db_table = f"{SCHEMA}.order_daily_status"
        db_table_comment = (
            "Orders per day of creation (UTC) and latest status, as of the last refresh; "
            "exact: order_daily_status_live."
        )


class TransitionColumns(models.Model):
    """The columns of ``order_status_transitions`` and its real-time twin."""

    status_id = models.BigIntegerField(primary_key=True, db_comment=TRANSITION_STATUS_ID)
    order_id = models.BigIntegerField(db_comment=ORDER_ID)
    from_status = models.TextField(db_comment=FROM_STATUS)
    to_status = models.TextField(db_comment=TO_STATUS)
    created = models.DateTimeField(db_comment=TRANSITION_CREATED)
    week = models.DateField(db_comment=WEEK)
    since_first = models.DurationField(db_comment=SINCE_FIRST)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"Order {self.order_id}: {self.from_status} -> {self.to_status}"


class OrderStatusTransitionsView(TransitionColumns, Migrated, pg.ReadOnlyMaterializedView):  # type: ignore[misc]
    """``reporting.order_status_transitions``: every change of an order's status, as of the refresh."""

    sql = view_sql("order_status_transitions")
    concurrent_index = "status_id"

    class Meta:
        managed = False
        db_table = f"{SCHEMA}.order_status_transitions"
        db_table_comment = (
            "Every change of an order's status (a status row whose previous row has another status), as "
            "of the last refresh; exact: order_status_transitions_live."
        )
        indexes = [
            # The real-time views take out the rows of the orders changed since the refresh.
            models.Index(fields=["order_id"], name="order_status_transitions_order"),
            # Weekly time to complete / to cancel: one range per status, index-only.
            models.Index(
                fields=["to_status", "week"], include=["since_first"], name="order_status_transitions_week"
            ),
        ]


class OrderTransitionsDailyView(Migrated, pg.ReadOnlyMaterializedView):
    """``reporting.order_transitions_daily``: status changes per day and kind, as of the refresh."""

    sql = view_sql("order_transitions_daily")
    dependencies = [_label("OrderStatusTransitionsView")]
    concurrent_index = "day, from_status, to_status"

    day = models.DateField(primary_key=True, db_comment=TRANSITION_DAY)
    from_status = models.TextField(db_comment=FROM_STATUS)
    to_status = models.TextField(db_comment=TO_STATUS)
    transitions = models.BigIntegerField(db_comment=TRANSITIONS)

    class Meta:
        managed = False
        db_table = f"{SCHEMA}.order_transitions_daily"
        db_table_comment = (
            "Status changes per day (UTC) and kind (from_status -> to_status), as of the last refresh; "
            "exact: order_transitions_daily_live."
        )


# The plumbing of the real-time views lives in public, beside the tables it reads:
# BI roles see the reports, not these (they run with their owner's rights).


class SnapshotStateView(Migrated, pg.ReadOnlyView):
    """``reporting_snapshot_state``: the snapshot the materialized views hold (one row)."""

    sql = view_sql("snapshot_state")
    # It names the materialized views' files, so it is built after them.
    dependencies = [
        _label("OrderLatestStatusView"),
        _label("OrderStatusCountsView"),
        _label("OrderDailyStatusView"),
        _label("OrderStatusTransitionsView"),
        _label("OrderTransitionsDailyView"),
    ]

    as_of = models.DateTimeField(primary_key=True)

    class Meta:
        managed = False
        db_table = "reporting_snapshot_state"


class PendingChangesView(Migrated, pg.ReadOnlyView):
    """``reporting_pending_changes``: the orders changed since that snapshot."""

    sql = view_sql("pending_changes")
    dependencies = [_label("SnapshotStateView"), _label("OrderLatestStatusView")]

    order_id = models.BigIntegerField(primary_key=True)

    class Meta:
        managed = False
        db_table = "reporting_pending_changes"


class FreshnessView(Migrated, pg.ReadOnlyView):
    """``reporting.freshness``: as-of time, age and changes since, for BI dashboards."""

    sql = view_sql("freshness")
    dependencies = [_label("SnapshotStateView"), _label("PendingChangesView")]

    as_of = models.DateTimeField(
        primary_key=True,
        db_comment="Everything committed before this is in the views: the refresh's snapshot time, or a "
        "later check that found nothing changed.",
    )
    checked_at = models.DateTimeField(db_comment="When this row was read (the database's clock).")
    age = models.DurationField(db_comment="checked_at - as_of.")
    changes_since = models.BigIntegerField(
        db_comment="Rows written to the order tables since the refresh (a TRUNCATE counts as one)."
    )
    needs_full_recompute = models.BooleanField(
        db_comment="The _live views compute everything from the history now (slow but exact)."
    )
    on_replica = models.BooleanField(db_comment="Read from a streaming replica.")
    replay_lag = models.DurationField(
        null=True, db_comment="On a replica: the age of the last transaction it replayed."
    )
    last_refresh_outcome = models.TextField(  # noqa: DJ001 - a view's column, NULL in the data
        null=True, db_comment="ok, unchanged, skipped, failed, abandoned or running."
    )
    last_refresh_started = models.DateTimeField(null=True, db_comment="When the latest refresh run started.")
    last_refresh_error = models.TextField(null=True, db_comment="Why the latest run failed or was skipped.")  # noqa: DJ001 - a view's column, NULL in the data
    snapshot_at = models.DateTimeField(null=True, db_comment="The latest successful refresh's snapshot time.")
    confirmed_at = models.DateTimeField(
        null=True, db_comment="The latest check since that refresh that found nothing changed."
    )
    folded_at = models.DateTimeField(
        null=True,
        db_comment="Everything committed before this is in the views and their overlay, which the _live "
        "views read: the latest fold (every second or so), or the refresh before the first.",
    )
    overlay_orders = models.BigIntegerField(
        db_comment="Orders changed since the refresh, held in the overlay; the next refresh empties it."
    )

    class Meta:
        managed = False
        db_table = f"{SCHEMA}.freshness"
        db_table_comment = (
            "One row: how fresh the materialized views are. Put it on every dashboard: "
            "'as of 12:00:01, 35 s ago, 120 changes since'."
        )


_REALTIME_DEPENDENCIES = [_label("SnapshotStateView"), _label("PendingChangesView")]


class OrderLatestStatusLiveView(Migrated, pg.ReadOnlyView):
    """``reporting.order_latest_status_live``: the latest status of every order, exact (real-time)."""

    sql = view_sql("order_latest_status_live")
    dependencies = [_label("OrderLatestStatusView"), *_REALTIME_DEPENDENCIES]

    order_id = models.BigIntegerField(primary_key=True, db_comment=ORDER_ID)
    status_id = models.BigIntegerField(db_comment=STATUS_ID)
    status = models.CharField(max_length=16, db_comment=STATUS)
    status_created = models.DateTimeField(db_comment=STATUS_CREATED)
    status_since = models.DateTimeField(db_comment=STATUS_SINCE)

    class Meta:
        managed = False
        db_table = f"{SCHEMA}.order_latest_status_live"
        db_table_comment = (
            "Each order's latest status, exact at query time: order_latest_status corrected by the orders "
            "changed since the refresh. Orders without a status have no row."
        )


class LatestRowColumns(models.Model):
    """The fixed columns of ``order_latest_row`` and its real-time twin (the declared ones follow)."""

    status_id = models.BigIntegerField(primary_key=True, db_comment=STATUS_ID)
    order_id = models.BigIntegerField(db_comment=ORDER_ID)
    status = models.TextField(db_comment=STATUS)
    status_created = models.DateTimeField(db_comment=STATUS_CREATED)
    status_since = models.DateTimeField(db_comment=STATUS_SINCE)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"Order {self.order_id}: {self.status}"


class OrderLatestRowView(LatestRowColumns, Migrated, pg.ReadOnlyView):  # type: ignore[misc]
    """``reporting.order_latest_row``: ``order_latest_status`` with the declared columns of each row.

    Those columns (``REPORTING_SOURCE["columns"]``) are in the view, for BI tools
    and SQL, but not fields of this model: the selectors read them
    (``OrderRow.columns``).
    """

    sql = view_sql("order_latest_row")
    dependencies = [_label("OrderLatestStatusView")]

    class Meta:
        managed = False
        db_table = f"{SCHEMA}.order_latest_row"
        db_table_comment = (
            "order_latest_status with the columns REPORTING_SOURCE declares to show, read from each "
            "order's latest history row; exact: order_latest_row_live."
        )


class OrderLatestRowLiveView(LatestRowColumns, Migrated, pg.ReadOnlyView):  # type: ignore[misc]
    """``reporting.order_latest_row_live``: the same over ``order_latest_status_live`` (exact)."""

    sql = view_sql("order_latest_row_live")
    dependencies = [_label("OrderLatestStatusLiveView")]

    class Meta:
        managed = False
        db_table = f"{SCHEMA}.order_latest_row_live"
        db_table_comment = (
            "order_latest_status_live with the columns REPORTING_SOURCE declares to show, read from each "
            "order's latest history row; exact at query time."
        )


class OrderStatusCountsLiveView(Migrated, pg.ReadOnlyView):
    """``reporting.order_status_counts_live``: orders per latest status, exact (real-time)."""

    sql = view_sql("order_status_counts_live")
    dependencies = [_label("OrderLatestStatusView"), _label("OrderStatusCountsView"), *_REALTIME_DEPENDENCIES]

    status = models.TextField(primary_key=True, db_comment=COUNT_STATUS)
    orders = models.BigIntegerField(db_comment=ORDERS)

    class Meta:
        managed = False
        db_table = f"{SCHEMA}.order_status_counts_live"
        db_table_comment = "Orders per latest status, exact at query time."


class OrderDailyStatusLiveView(Migrated, pg.ReadOnlyView):
    """``reporting.order_daily_status_live``: orders per day and latest status, exact (real-time)."""

    sql = view_sql("order_daily_status_live")
    dependencies = [_label("OrderLatestStatusView"), _label("OrderDailyStatusView"), *_REALTIME_DEPENDENCIES]

    day = models.DateField(primary_key=True, db_comment=DAY)
    status = models.TextField(db_comment=COUNT_STATUS)
    orders = models.BigIntegerField(db_comment=ORDERS)

    class Meta:
        managed = False
        db_table = f"{SCHEMA}.order_daily_status_live"
        db_table_comment = "Orders per day of creation (UTC) and latest status, exact at query time."


class OrderStatusTransitionsLiveView(TransitionColumns, Migrated, pg.ReadOnlyView):  # type: ignore[misc]
    """``reporting.order_status_transitions_live``: every change of an order's status, exact."""

    sql = view_sql("order_status_transitions_live")
    dependencies = [_label("OrderStatusTransitionsView"), *_REALTIME_DEPENDENCIES]

    class Meta:
        managed = False
        db_table = f"{SCHEMA}.order_status_transitions_live"
        db_table_comment = (
            "Every change of an order's status, exact at query time. Filter on to_status and week (or "
            "order_id): those filters reach the index."
        )


class OrderTransitionsDailyLiveView(Migrated, pg.ReadOnlyView):
    """``reporting.order_transitions_daily_live``: status changes per day and kind, exact."""

    sql = view_sql("order_transitions_daily_live")
    dependencies = [
        _label("OrderStatusTransitionsView"),
        _label("OrderTransitionsDailyView"),
        *_REALTIME_DEPENDENCIES,
    ]

    day = models.DateField(primary_key=True, db_comment=TRANSITION_DAY)
    from_status = models.TextField(db_comment=FROM_STATUS)
    to_status = models.TextField(db_comment=TO_STATUS)
    transitions = models.BigIntegerField(db_comment=TRANSITIONS)

    class Meta:
        managed = False
        db_table = f"{SCHEMA}.order_transitions_daily_live"
        db_table_comment = (
            "Status changes per day (UTC) and kind (from_status -> to_status), exact at query time."
        )


class OrderTransitionTimesWeeklyLiveView(Migrated, pg.ReadOnlyView):
    """``reporting.order_transition_times_weekly_live``: time to reach each status per week, exact."""

    sql = view_sql("order_transition_times_weekly_live")
    dependencies = [_label("OrderStatusTransitionsLiveView")]

    week = models.DateField(primary_key=True, db_comment=WEEK)
    to_status = models.TextField(db_comment="The status reached.")
    transitions = models.BigIntegerField(db_comment="How many changes into it that week.")
    median = models.DurationField(db_comment="The median time from the order's first status row.")
    p90 = models.DurationField(db_comment="The 90th percentile of that time.")

    class Meta:
        managed = False
        db_table = f"{SCHEMA}.order_transition_times_weekly_live"
        db_table_comment = (
            "How long orders take to reach each status: the median and 90th percentile per week of the "
            "change, exact at query time. Filter on week (and on to_status)."
        )


class OrdersView(Migrated, pg.ReadOnlyView):
    """``reporting.orders``: every order and its day, for BI reports per order."""

    sql = view_sql("orders")

    order_id = models.BigIntegerField(primary_key=True, db_comment=ORDER_ID)
    created = models.DateTimeField(db_comment="When the order was created.")
    day = models.DateField(db_comment="The day it was created (UTC).")

    class Meta:
        managed = False
        db_table = f"{SCHEMA}.orders"
        db_table_comment = (
            "Every order. Join order_latest_status_live on order_id for its status. Filters on day or "
            "created read every order."
        )


class OrderStatusHistoryView(Migrated, pg.ReadOnlyView):
    """``reporting.order_status_history``: every status row with the status before it and the time in it."""

    sql = view_sql("order_status_history")

    status_id = models.BigIntegerField(primary_key=True, db_comment="The status row.")
    order_id = models.BigIntegerField(db_comment=ORDER_ID)
    status = models.TextField(db_comment="The status this row records.")
    created = models.DateTimeField(db_comment="When the order entered it.")
    previous_status = models.TextField(  # noqa: DJ001 - a view's column, NULL in the data
        null=True,
        db_comment="The status before it (empty for the first row).",
    )
    next_created = models.DateTimeField(
        null=True, db_comment="When the order left it (empty for the latest row)."
    )
    time_in_status = models.DurationField(
        db_comment="How long the order stayed in it; so far, for the latest."
    )
    latest = models.BooleanField(db_comment="Whether this is the order's latest status row.")

    class Meta:
        managed = False
        db_table = f"{SCHEMA}.order_status_history"
        db_table_comment = (
            "Every status row of every order, sorted as the latest status is defined, with the status "
            "before it and the time spent in it. Filter on order_id for one order: any other filter reads "
            "the whole history first (seconds at a million orders)."
        )
