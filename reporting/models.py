"""The reporting machinery's own tables: the change log, the refresh log and lock, the overlay,
API tokens and BI limits; and the reports' permissions.

The history it reports on is the project's (``REPORTING_SOURCE``); this
repository's example shop is the app ``examples.shop``. The reporting views'
declarations (:mod:`reporting.matviews`) and the read-only models the ORM queries
(:mod:`reporting.read_models`) are imported here so that Django registers them
with the app.
"""

from __future__ import annotations

__all__ = [
    "ApiToken",
    "AuditRun",
    "BiRoleLimits",
    "CsvExport",
    "Fold",
    "FreshnessView",
    "OrderChange",
    "OrderDailyStatusLiveView",
    "OrderDailyStatusView",
    "OrderLatestRowLiveView",
    "OrderLatestRowView",
    "OrderLatestStatus",
    "OrderLatestStatusLive",
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
    "OverlayCount",
    "OverlayDaily",
    "OverlayOrder",
    "OverlayTransition",
    "OverlayTransitionDaily",
    "PendingChangesView",
    "RefreshLock",
    "RefreshRun",
    "Report",
    "SnapshotStateView",
]

from typing import Any

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q
from django.db.models.expressions import RawSQL
from django.db.models.functions import Now
from django.utils import timezone

from reporting.choices import AuditOutcome, ChangeSource, RefreshOutcome, RefreshTrigger


class Report(models.Model):
    """The reports themselves: only a home for their permissions (no table).

    ``reporting.view_reports`` lets a user see the dashboard, the API and CSV
    exports; ``reporting.read_live`` adds live reads, whose cost grows with the data;
    ``reporting.view_metrics`` the Prometheus metrics.
    """

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [
            ("view_reports", "Can see the order reports: dashboard, API and CSV export"),
            ("read_live", "Can ask the API for live reads, whose cost grows with the data"),
            ("view_metrics", "Can read the Prometheus metrics (/metrics)"),
        ]

    def __str__(self) -> str:
        return "reports"


class Xid8Field(models.BigIntegerField):
    """A PostgreSQL ``xid8``: a 64-bit transaction id, which never wraps around."""

    def db_type(self, connection: Any) -> str:
        return "xid8"

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> int | None:
        return None if value is None else int(value)


class OrderChange(models.Model):
    """The change log: the orders a statement touched, and the transaction that ran it.

    Written only by the triggers on the declared source (reporting/source_sql.py):
    statement-level triggers with transition tables, one row per
    statement holding every order id it touched, so a bulk insert of 100 000
    status rows costs one small extra insert, not 100 000.

    Why a transaction id and not a sequence number or a timestamp: a refresh reads
    the source tables in one MVCC snapshot, and a change is in the view exactly when
    the transaction that made it is visible in that snapshot. A transaction that
    took a lower sequence number can commit after the snapshot was taken, so
    "number <= n" would misattribute it; ``pg_visible_in_snapshot(xid, snapshot)``
    cannot. Each refresh records its snapshot (``RefreshRun.snapshot``); an entry
    is *absorbed* by a refresh when its ``xid`` is visible in that snapshot, and is
    pruned once the latest successful refresh has absorbed it.
    """

    id = models.BigAutoField(primary_key=True)
    # No foreign key: the log outlives deleted orders. May repeat an id. NULL: a
    # TRUNCATE, which changed every order.
    order_ids = ArrayField(models.BigIntegerField(), null=True)
    xid = Xid8Field(db_default=RawSQL("pg_current_xact_id()", []))
    source = models.CharField(max_length=16, choices=ChangeSource.choices)
    logged_at = models.DateTimeField(db_default=Now())

    class Meta:
        verbose_name = "order change"
        indexes = [
            # What a fold and a real-time read look for: the entries of transactions
            # at or after a snapshot's xmin (all older ones are visible in it).
            models.Index(fields=["xid"], name="orderchange_xid"),
            # TRUNCATEs since a snapshot, which every real-time read looks for.
            models.Index(
                fields=["xid"], condition=Q(order_ids__isnull=True), name="orderchange_truncate_xid"
            ),
        ]

    def __str__(self) -> str:
        return f"{len(self.order_ids or [])} orders changed ({self.source}) by transaction {self.xid}"


class RefreshRun(models.Model):
    """One run of the refresh service, whatever its outcome."""

    id = models.BigAutoField(primary_key=True)
    views = models.TextField(help_text="The views refreshed, comma-separated, dependencies first.")
    trigger = models.CharField(max_length=16, choices=RefreshTrigger.choices)
    outcome = models.CharField(max_length=16, choices=RefreshOutcome.choices)
    concurrently = models.BooleanField(default=True)
    started = models.DateTimeField()
    # The MVCC snapshot the refresh read (pg_snapshot as text) and when it was
    # taken: everything committed before snapshot_at is in the views.
    snapshot = models.TextField(blank=True, default="")
    snapshot_at = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)
    duration = models.DurationField(null=True, blank=True)
    rows = models.BigIntegerField(null=True, blank=True, help_text="Rows in order_latest_status after it.")
    changes_absorbed = models.BigIntegerField(
        null=True, blank=True, help_text="Rows written to the source tables that this refresh took in."
    )
    # The files the materialized views were stored in after this refresh
    # (pg_relation_filenode). Readers compare them with the files now: another
    # file means the views were rewritten since (a plain REFRESH whose commit the
    # reader's snapshot does not see, a rebuild by migrate), and that the change
    # log cannot correct them (views_sql/snapshot_state.sql).
    view_filenodes = ArrayField(models.BigIntegerField(), null=True, blank=True)
    error = models.TextField(blank=True, default="", help_text="Why it failed, was skipped or was abandoned.")
    # The server process that ran it: a later run marks a run still "running"
    # abandoned only once that process is gone.
    backend_pid = models.IntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            # "The latest successful refresh", read by every freshness and real-time query.
            models.Index(
                fields=["-id"], condition=Q(outcome=RefreshOutcome.OK), name="refreshrun_latest_ok_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"Refresh {self.pk} ({self.trigger}): {self.outcome}"


class AuditRun(models.Model):
    """One exactness audit: keys whose real-time latest row was compared with the history.

    Written by :func:`reporting.services.exactness_audit`; ``/readyz``,
    ``reporting_status`` and the metrics read the latest one.
    """

    id = models.BigAutoField(primary_key=True)
    started = models.DateTimeField()
    duration = models.DurationField()
    outcome = models.CharField(max_length=16, choices=AuditOutcome.choices)
    generation = models.BigIntegerField(null=True, blank=True, help_text="The refresh run the views are of.")
    range_keys = models.IntegerField(default=0, help_text="Keys of the random key range checked.")
    recent_keys = models.IntegerField(default=0, help_text="Keys changed since the previous audit checked.")
    keys_checked = models.IntegerField(default=0, help_text="Distinct keys checked (both parts).")
    mismatches = models.IntegerField(default=0)
    # The first MAX_LOGGED_KEYS keys found wrong, as text (integer or UUID keys).
    mismatched_keys = ArrayField(models.TextField(), default=list, blank=True)
    # The snapshot of the overlay's latest fold at this audit (pg_snapshot as text):
    # the next audit's recent keys are those of the changes it had not seen.
    fold_snapshot = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["started"], name="auditrun_started_idx")]

    def __str__(self) -> str:
        return f"Audit {self.pk}: {self.outcome}, {self.mismatches} of {self.keys_checked} keys wrong"


class RefreshLock(models.Model):
    """The lock that lets one refresh run at a time. The table never holds a row.

    A refresh takes ``LOCK TABLE reporting_refreshlock IN EXCLUSIVE MODE`` on a
    connection of its own and keeps it until it is done. Why not an advisory
    lock: any role can take any advisory lock, a BI login included, and could
    so stop every refresh. Locking this table in that mode needs UPDATE, DELETE or
    TRUNCATE on it, which only its owner has; and a transaction that only holds
    a table lock has no transaction id and no snapshot, so it holds back no
    VACUUM while the refresh and its vacuum run.
    """

    id = models.BigAutoField(primary_key=True)

    class Meta:
        verbose_name = "refresh lock"

    def __str__(self) -> str:
        return "the refresh lock"


# --- The overlay: what changed since the materialized views' snapshot, kept current by folds ---------------
#
# Every row belongs to a *generation*: the refresh run whose materialized views it
# corrects. A refresh (a compaction) starts a new generation, whose overlay holds the
# orders changed while it ran (reporting/services/handover.py); the folds of the old
# one are deleted by the next fold. See views_sql/overlay_fold.sql.


class Fold(models.Model):
    """How far the overlay of one generation is folded: the snapshot of its latest fold.

    The table doubles as the fold lock: a fold takes ``LOCK TABLE reporting_fold IN
    EXCLUSIVE MODE`` before its snapshot, so two folds never overlap, and readers
    (which take no lock but ACCESS SHARE) never wait.
    """

    generation = models.BigIntegerField(primary_key=True, help_text="The refresh run the overlay corrects.")
    snapshot = models.TextField(help_text="The MVCC snapshot of the latest fold (pg_snapshot as text).")
    snapshot_at = models.DateTimeField(help_text="Everything committed before this is in the overlay.")
    folds = models.BigIntegerField(default=0)
    orders = models.BigIntegerField(default=0, help_text="Orders in the overlay.")
    changes = models.BigIntegerField(default=0, help_text="Change-log entries folded in.")
    # False once an order row that the views hold was deleted or updated before a
    # fold saw it: its day in the views is unknown, so daily reads recount.
    daily_exact = models.BooleanField(default=True)

    class Meta:
        verbose_name = "overlay fold"

    def __str__(self) -> str:
        return f"Overlay of refresh {self.generation}: {self.orders} orders, as of {self.snapshot_at}"


class OverlayOrder(models.Model):
    """The current state of an order changed since the views' snapshot, as of the latest fold."""

    pk = models.CompositePrimaryKey("generation", "order_id")
    generation = models.BigIntegerField()
    order_id = models.BigIntegerField()
    exists_now = models.BooleanField()
    # Its latest status row; empty for an order without one (or that is gone).
    status_id = models.BigIntegerField(null=True)
    status = models.TextField(null=True)  # noqa: DJ001 - NULL: no status
    status_created = models.DateTimeField(null=True)
    day = models.DateField(null=True, help_text="The day the order was created (UTC).")
    # When it entered its status: the first row of its final run of equal statuses.
    status_since = models.DateTimeField(null=True)

    class Meta:
        indexes = [
            # Pages of one status, in list order either way, as the real-time view
            # and page function read them. Not led by generation: the view decides
            # a row's generation in a filter, which an index scan can check on its
            # own columns but not seek by (the overlay of an older generation lasts
            # only until the next fold). status_since is included so that a page
            # stays an index-only scan.
            models.Index(
                fields=["status", "-status_created", "-order_id"],
                include=["status_id", "generation", "status_since"],
                name="overlayorder_since_keyset",
            ),
        ]

    def __str__(self) -> str:
        return f"Order {self.order_id} in overlay {self.generation}: {self.status}"


class OverlayTransition(models.Model):
    """The status changes of an order in the overlay, as of the latest fold."""

    pk = models.CompositePrimaryKey("generation", "status_id")
    generation = models.BigIntegerField()
    status_id = models.BigIntegerField()
    order_id = models.BigIntegerField()
    from_status = models.TextField()
    to_status = models.TextField()
    created = models.DateTimeField()
    week = models.DateField()
    since_first = models.DurationField()

    class Meta:
        indexes = [
            models.Index(fields=["generation", "order_id"], name="overlaytransition_order"),
            models.Index(
                fields=["generation", "to_status", "week"],
                include=["since_first"],
                name="overlaytransition_week",
            ),
        ]

    def __str__(self) -> str:
        return f"Order {self.order_id}: {self.from_status} -> {self.to_status}"


# The views count the keys without rows under status NULL. These two tables cannot:
# a primary key column cannot hold NULL, and PostgreSQL 14 has no UNIQUE NULLS NOT
# DISTINCT, so a nullable status with a unique index would let every fold add a
# second NULL row instead of updating the first (ON CONFLICT never fires). Nor can
# any text stand for "no rows": a history may hold any value ('none' and '' too).
# So a flag in the key says it: no_rows = true (with status '') is the keys without
# rows, and readers turn it back into NULL (views_sql/overlay_fold.sql and the
# _live views that read these tables).


class OverlayCount(models.Model):
    """What the overlay adds to ``order_status_counts``, per status (negative: fewer)."""

    pk = models.CompositePrimaryKey("generation", "no_rows", "status")
    generation = models.BigIntegerField()
    no_rows = models.BooleanField(default=False, help_text="The keys without rows (status is then '').")
    status = models.TextField()
    orders = models.BigIntegerField()

    def __str__(self) -> str:
        return f"{'(no rows)' if self.no_rows else self.status}: {self.orders:+d}"


class OverlayDaily(models.Model):
    """What the overlay adds to ``order_daily_status``, per day and status."""

    pk = models.CompositePrimaryKey("generation", "day", "no_rows", "status")
    generation = models.BigIntegerField()
    day = models.DateField()
    no_rows = models.BooleanField(default=False, help_text="The keys without rows (status is then '').")
    status = models.TextField()
    orders = models.BigIntegerField()

    def __str__(self) -> str:
        return f"{self.day} {'(no rows)' if self.no_rows else self.status}: {self.orders:+d}"


class OverlayTransitionDaily(models.Model):
    """What the overlay adds to ``order_transitions_daily``, per day and kind."""

    pk = models.CompositePrimaryKey("generation", "day", "from_status", "to_status")
    generation = models.BigIntegerField()
    day = models.DateField()
    from_status = models.TextField()
    to_status = models.TextField()
    transitions = models.BigIntegerField()

    def __str__(self) -> str:
        return f"{self.day} {self.from_status} -> {self.to_status}: {self.transitions:+d}"


class ApiToken(models.Model):
    """An API token of a user; only its SHA-256 digest is stored (see reporting/services/tokens.py)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, blank=True, help_text="What it is for; unique per user.")
    digest = models.CharField(max_length=64, unique=True)
    created = models.DateTimeField(auto_now_add=True)
    expires = models.DateTimeField(null=True, blank=True, help_text="Refused from then on; empty: never.")
    last_used = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            # So that "revoke the token named X" names one token.
            models.UniqueConstraint(
                fields=["user", "name"], condition=~Q(name=""), name="apitoken_unique_name_per_user"
            ),
        ]

    def __str__(self) -> str:
        return f"API token {self.name or self.pk} of {self.user}"


class CsvExport(models.Model):
    """One CSV export started through the API: what the per-token rate limit counts."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    token = models.ForeignKey(ApiToken, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    status = models.TextField()
    started = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["user", "token", "-started"], name="csvexport_recent_idx")]

    def __str__(self) -> str:
        return f"CSV export of {self.status} orders by {self.user} at {self.started:%Y-%m-%d %H:%M:%S}"


class BiRoleLimits(models.Model):
    """The limits a BI login role was created with: what the watchdog and ``bi_role check`` hold it to.

    PostgreSQL lets any role change its own settings (``SET statement_timeout = 0``,
    ``ALTER ROLE <self> SET ...``), so the role's settings cannot be the record of
    its limits. This table can: BI roles cannot read or write it.
    """

    name = models.CharField(max_length=63, unique=True)
    connection_limit = models.PositiveIntegerField()
    statement_timeout = models.CharField(max_length=32)
    idle_in_transaction_session_timeout = models.CharField(max_length=32)
    # Enforced by the watchdog only: a transaction kept open by short statements
    # holds its locks (and its snapshot) as long as it lives.
    transaction_timeout = models.CharField(max_length=32, default="10min")
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "BI role limits"
        verbose_name_plural = "BI role limits"

    def __str__(self) -> str:
        return f"Limits of BI role {self.name}"


class BiTermination(models.Model):
    """A BI session the watchdog ended, or a BI prepared transaction it rolled back.

    Counted per role over ``REPORTING_BI_LOCKOUT_WINDOW`` for the lockout: a role
    that reconnects as fast as it is ended would otherwise hold what the product
    needs most of the time. Rows older than the window are deleted.
    """

    name = models.CharField(max_length=63, db_index=True)
    at = models.DateTimeField(auto_now_add=True)
    reason = models.TextField()

    def __str__(self) -> str:
        return f"BI role {self.name} ended at {self.at}"


class BiRoleLockout(models.Model):
    """A BI role the watchdog locked out (``ALTER ROLE ... NOLOGIN``) after repeated terminations.

    ``bi_role unlock`` lets it log in again and deletes this row.
    """

    name = models.CharField(max_length=63, unique=True)
    locked_at = models.DateTimeField(auto_now_add=True)
    terminations = models.PositiveIntegerField()
    window = models.FloatField()
    reason = models.TextField()

    class Meta:
        verbose_name = "BI role lockout"

    def __str__(self) -> str:
        return f"BI role {self.name} locked out at {self.locked_at}"


from reporting.matviews import (  # noqa: E402
    FreshnessView,
    OrderDailyStatusLiveView,
    OrderDailyStatusView,
    OrderLatestRowLiveView,
    OrderLatestRowView,
    OrderLatestStatusLiveView,
    OrderLatestStatusView,
    OrderStatusCountsLiveView,
    OrderStatusCountsView,
    OrderStatusHistoryView,
    OrderStatusTransitionsLiveView,
    OrderStatusTransitionsView,
    OrdersView,
    OrderTransitionsDailyLiveView,
    OrderTransitionsDailyView,
    OrderTransitionTimesWeeklyLiveView,
    PendingChangesView,
    SnapshotStateView,
)
from reporting.read_models import OrderLatestStatus, OrderLatestStatusLive  # noqa: E402
