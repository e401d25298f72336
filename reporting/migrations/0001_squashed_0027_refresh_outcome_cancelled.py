"""The app's database objects as of 0.1.0, in one migration.

It replaces the 27 migrations written before the first release (0001_initial to
0027_refresh_outcome_cancelled): a database that has all of them applied takes
this one as applied, a new one runs only this. It makes the app's own objects and
nothing else: the example shop's tables belong to ``examples.shop``. A database
migrated part of the way through the old history must first be migrated to the
end of it with a release that still has those files (the CHANGELOG says which).

The reporting views (schema ``REPORTING_SCHEMA``) are not made here: pgviews-redux
creates them from ``views_sql/`` on ``post_migrate``, and the app then installs
what the declared source needs (``REPORTING_SOURCE``). The functions below are
frozen with this migration in ``reporting/migrations/sql/``; a later change of
one adds a new version there and a migration that deploys it.
"""

import django.contrib.postgres.fields
import django.db.models.deletion
import django.db.models.expressions
import django.db.models.functions.datetime
import django.utils.timezone
import django_pgviews.db.migrations.operations
import reporting.models
import reporting.read_models
from django.conf import settings
from django.db import migrations, models

from reporting.sql_files import frozen_sql

# The app's SQL functions. Their bodies read the views generated from
# REPORTING_SOURCE, which migrate installs when it ends: not checked now. Keys are
# bigint here, spelled as the install spells them, so that a function reads the
# same whichever made it; the install retypes them to the declared keys' type (uuid, say).
FROZEN = (
    "overlay_fold_v5",
    "order_latest_status_page_v4",
    "order_latest_status_rows_v3",
    "latest_status_recomputed_v4",
    "order_daily_status_computed_v2",
)
KEY_TYPE_MARK = "bigint /*key_type*/"
FUNCTIONS = [
    "SET LOCAL check_function_bodies = off",
    *(frozen_sql(name).replace(KEY_TYPE_MARK, "bigint") for name in FROZEN),
    "RESET check_function_bodies",
]
DROP_FUNCTIONS = """
DO $drop$
DECLARE f regprocedure;
BEGIN
    FOR f IN
        SELECT p.oid::regprocedure FROM pg_proc AS p JOIN pg_namespace AS n ON n.oid = p.pronamespace
        WHERE n.nspname = 'public' AND p.proname IN (
            'reporting_overlay_fold', 'reporting_latest_status_page', 'reporting_latest_status_rows',
            'reporting_latest_status_recomputed', 'reporting_order_daily_status_computed'
        )
    LOOP
        EXECUTE format('DROP FUNCTION %s CASCADE', f);
    END LOOP;
END
$drop$
"""


def create_schema(apps, schema_editor):
    # The schema of REPORTING_SCHEMA, which holds the reporting views and only them
    # (BI roles get USAGE on it and nothing else); refused if it holds objects of others.
    from reporting.services.bi import reporting_schema_create

    reporting_schema_create(using=schema_editor.connection.alias)


def drop_schema(apps, schema_editor):
    from reporting.sql_files import SCHEMA

    schema_editor.execute(f'DROP SCHEMA IF EXISTS "{SCHEMA}" CASCADE')


def uninstall_source(apps, schema_editor):
    # Back to zero: the triggers on the declared tables would write to a change log
    # that is gone (the install, on post_migrate, made them and the generated views).
    from reporting.source_install import source_uninstall

    source_uninstall(using=schema_editor.connection.alias)


def apply_grants(apps, schema_editor):
    # The schema and the default privileges, if a BI group exists already; the
    # views are granted again when pgviews-redux has made them (post_migrate).
    from reporting.services.bi import bi_grants_apply

    bi_grants_apply(using=schema_editor.connection.alias)


class Migration(migrations.Migration):
    initial = True

    replaces = [
        ("reporting", "0001_initial"),
        ("reporting", "0002_change_log_and_refresh_runs"),
        ("reporting", "0003_reporting_views"),
        ("reporting", "0004_bi_grants"),
        ("reporting", "0005_api_tokens_and_report_permission"),
        ("reporting", "0006_hardening"),
        ("reporting", "0007_web_read_limits"),
        ("reporting", "0008_bi_catalog"),
        ("reporting", "0009_transitions"),
        ("reporting", "0010_overlay"),
        ("reporting", "0011_page_view_and_cheaper_fold"),
        ("reporting", "0012_page_function_v2"),
        ("reporting", "0013_overlay_page_index"),
        ("reporting", "0014_example_tables"),
        ("reporting", "0015_declared_source_models"),
        ("reporting", "0016_declared_statuses"),
        ("reporting", "0017_example_shop_app"),
        ("reporting", "0018_statuses_as_text"),
        ("reporting", "0019_latest_row_views"),
        ("reporting", "0020_daily_status_computed"),
        ("reporting", "0021_keys_of_any_type"),
        ("reporting", "0022_comments_without_the_example_shops_words"),
        ("reporting", "0023_status_since_and_null_for_no_rows"),
        ("reporting", "0024_fold_deletes_by_row_id"),
        ("reporting", "0025_bi_role_lockout"),
        ("reporting", "0026_audit_runs"),
        ("reporting", "0027_refresh_outcome_cancelled"),
    ]

    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RunPython(create_schema, drop_schema),
        migrations.RunPython(migrations.RunPython.noop, uninstall_source),
        migrations.CreateModel(
            name="FreshnessView",
            fields=[
                (
                    "as_of",
                    models.DateTimeField(
                        db_comment="Everything committed before this is in the views: the refresh's snapshot time, or a later check that found nothing changed.",
                        primary_key=True,
                        serialize=False,
                    ),
                ),
                (
                    "checked_at",
                    models.DateTimeField(db_comment="When this row was read (the database's clock)."),
                ),
                ("age", models.DurationField(db_comment="checked_at - as_of.")),
                (
                    "changes_since",
                    models.BigIntegerField(
                        db_comment="Rows written to the order tables since the refresh (a TRUNCATE counts as one)."
                    ),
                ),
                (
                    "needs_full_recompute",
                    models.BooleanField(
                        db_comment="The _live views compute everything from the history now (slow but exact)."
                    ),
                ),
                ("on_replica", models.BooleanField(db_comment="Read from a streaming replica.")),
                (
                    "replay_lag",
                    models.DurationField(
                        db_comment="On a replica: the age of the last transaction it replayed.", null=True
                    ),
                ),
                (
                    "last_refresh_outcome",
                    models.TextField(
                        db_comment="ok, unchanged, skipped, failed, abandoned or running.", null=True
                    ),
                ),
                (
                    "last_refresh_started",
                    models.DateTimeField(db_comment="When the latest refresh run started.", null=True),
                ),
                (
                    "last_refresh_error",
                    models.TextField(db_comment="Why the latest run failed or was skipped.", null=True),
                ),
                (
                    "snapshot_at",
                    models.DateTimeField(
                        db_comment="The latest successful refresh's snapshot time.", null=True
                    ),
                ),
                (
                    "confirmed_at",
                    models.DateTimeField(
                        db_comment="The latest check since that refresh that found nothing changed.",
                        null=True,
                    ),
                ),
                (
                    "folded_at",
                    models.DateTimeField(
                        db_comment="Everything committed before this is in the views and their overlay, which the _live views read: the latest fold (every second or so), or the refresh before the first.",
                        null=True,
                    ),
                ),
                (
                    "overlay_orders",
                    models.BigIntegerField(
                        db_comment="Orders changed since the refresh, held in the overlay; the next refresh empties it."
                    ),
                ),
            ],
            options={
                "db_table": "reporting.freshness",
                "db_table_comment": "One row: how fresh the materialized views are. Put it on every dashboard: 'as of 12:00:01, 35 s ago, 120 changes since'.",
                "managed": False,
            },
        ),
        migrations.CreateModel(
            name="HistoryRow",
            fields=[
                ("id", models.BigIntegerField(primary_key=True, serialize=False)),
                ("order_id", reporting.read_models.KeyField()),
                ("status", models.TextField()),
                ("created", models.DateTimeField()),
            ],
            options={
                "db_table": "reporting_orderstatus",
                "managed": False,
            },
            bases=(reporting.read_models.ReadOnlyModelMixin, models.Model),
        ),
        migrations.CreateModel(
            name="KeyRow",
            fields=[
                ("id", reporting.read_models.KeyField(primary_key=True, serialize=False)),
                ("created", models.DateTimeField()),
            ],
            options={
                "db_table": "reporting_order",
                "managed": False,
            },
            bases=(reporting.read_models.ReadOnlyModelMixin, models.Model),
        ),
        migrations.CreateModel(
            name="OrderDailyStatusLiveView",
            fields=[
                (
                    "day",
                    models.DateField(
                        db_comment="The day the orders were created (UTC).", primary_key=True, serialize=False
                    ),
                ),
                (
                    "status",
                    models.TextField(
                        db_comment="A latest status, or NULL (empty) for the orders that have no status row."
                    ),
                ),
                ("orders", models.BigIntegerField(db_comment="How many orders.")),
            ],
            options={
                "db_table": "reporting.order_daily_status_live",
                "db_table_comment": "Orders per day of creation (UTC) and latest status, exact at query time.",
                "managed": False,
            },
        ),
        migrations.CreateModel(
            name="OrderDailyStatusView",
            fields=[
                (
                    "day",
                    models.DateField(
                        db_comment="The day the orders were created (UTC).", primary_key=True, serialize=False
                    ),
                ),
                (
                    "status",
                    models.TextField(
                        db_comment="A latest status, or NULL (empty) for the orders that have no status row."
                    ),
                ),
                ("orders", models.BigIntegerField(db_comment="How many orders.")),
            ],
            options={
                "db_table": "reporting.order_daily_status",
                "db_table_comment": "Orders per day of creation (UTC) and latest status, as of the last refresh; exact: order_daily_status_live.",
                "managed": False,
            },
        ),
        migrations.CreateModel(
            name="OrderLatestRowLiveView",
            fields=[
                (
                    "status_id",
                    models.BigIntegerField(
                        db_comment="The order's latest status row: the greatest (created, id) of its rows.",
                        primary_key=True,
                        serialize=False,
                    ),
                ),
                (
                    "order_id",
                    models.BigIntegerField(db_comment="The order (its key in the declared source)."),
                ),
                (
                    "status",
                    models.TextField(
                        db_comment="The latest status: one of the declared statuses (REPORTING_SOURCE)."
                    ),
                ),
                (
                    "status_created",
                    models.DateTimeField(
                        db_comment="The created time of the order's latest status row. A row that repeats the status before it moves it: when the order entered the status is status_since."
                    ),
                ),
                (
                    "status_since",
                    models.DateTimeField(
                        db_comment="When the order entered its current status: the created time of the first row of its final run of rows with this status (a repeated status row does not move it)."
                    ),
                ),
            ],
            options={
                "db_table": "reporting.order_latest_row_live",
                "db_table_comment": "order_latest_status_live with the columns REPORTING_SOURCE declares to show, read from each order's latest history row; exact at query time.",
                "managed": False,
            },
        ),
        migrations.CreateModel(
            name="OrderLatestRowView",
            fields=[
                (
                    "status_id",
                    models.BigIntegerField(
                        db_comment="The order's latest status row: the greatest (created, id) of its rows.",
                        primary_key=True,
                        serialize=False,
                    ),
                ),
                (
                    "order_id",
                    models.BigIntegerField(db_comment="The order (its key in the declared source)."),
                ),
                (
                    "status",
                    models.TextField(
                        db_comment="The latest status: one of the declared statuses (REPORTING_SOURCE)."
                    ),
                ),
                (
                    "status_created",
                    models.DateTimeField(
                        db_comment="The created time of the order's latest status row. A row that repeats the status before it moves it: when the order entered the status is status_since."
                    ),
                ),
                (
                    "status_since",
                    models.DateTimeField(
                        db_comment="When the order entered its current status: the created time of the first row of its final run of rows with this status (a repeated status row does not move it)."
                    ),
                ),
            ],
            options={
                "db_table": "reporting.order_latest_row",
                "db_table_comment": "order_latest_status with the columns REPORTING_SOURCE declares to show, read from each order's latest history row; exact: order_latest_row_live.",
                "managed": False,
            },
        ),
        migrations.CreateModel(
            name="OrderLatestStatusLiveView",
            fields=[
                (
                    "order_id",
                    models.BigIntegerField(
                        db_comment="The order (its key in the declared source).",
                        primary_key=True,
                        serialize=False,
                    ),
                ),
                (
                    "status_id",
                    models.BigIntegerField(
                        db_comment="The order's latest status row: the greatest (created, id) of its rows."
                    ),
                ),
                (
                    "status",
                    models.CharField(
                        db_comment="The latest status: one of the declared statuses (REPORTING_SOURCE).",
                        max_length=16,
                    ),
                ),
                (
                    "status_created",
                    models.DateTimeField(
                        db_comment="The created time of the order's latest status row. A row that repeats the status before it moves it: when the order entered the status is status_since."
                    ),
                ),
                (
                    "status_since",
                    models.DateTimeField(
                        db_comment="When the order entered its current status: the created time of the first row of its final run of rows with this status (a repeated status row does not move it)."
                    ),
                ),
            ],
            options={
                "db_table": "reporting.order_latest_status_live",
                "db_table_comment": "Each order's latest status, exact at query time: order_latest_status corrected by the orders changed since the refresh. Orders without a status have no row.",
                "managed": False,
            },
        ),
        migrations.CreateModel(
            name="OrderLatestStatusView",
            fields=[
                (
                    "order_id",
                    models.BigIntegerField(
                        db_comment="The order (its key in the declared source).",
                        primary_key=True,
                        serialize=False,
                    ),
                ),
                (
                    "status_id",
                    models.BigIntegerField(
                        db_comment="The order's latest status row: the greatest (created, id) of its rows."
                    ),
                ),
                (
                    "status",
                    models.CharField(
                        db_comment="The latest status: one of the declared statuses (REPORTING_SOURCE).",
                        max_length=16,
                    ),
                ),
                (
                    "status_created",
                    models.DateTimeField(
                        db_comment="The created time of the order's latest status row. A row that repeats the status before it moves it: when the order entered the status is status_since."
                    ),
                ),
                (
                    "status_since",
                    models.DateTimeField(
                        db_comment="When the order entered its current status: the created time of the first row of its final run of rows with this status (a repeated status row does not move it)."
                    ),
                ),
            ],
            options={
                "db_table": "reporting.order_latest_status",
                "db_table_comment": "Each order's latest status as of the last refresh (see freshness); orders without a status have no row. Fastest; for exact numbers use order_latest_status_live.",
                "managed": False,
            },
        ),
        migrations.CreateModel(
            name="OrderStatusCountsLiveView",
            fields=[
                (
                    "status",
                    models.TextField(
                        db_comment="A latest status, or NULL (empty) for the orders that have no status row.",
                        primary_key=True,
                        serialize=False,
                    ),
                ),
                ("orders", models.BigIntegerField(db_comment="How many orders.")),
            ],
            options={
                "db_table": "reporting.order_status_counts_live",
                "db_table_comment": "Orders per latest status, exact at query time.",
                "managed": False,
            },
        ),
        migrations.CreateModel(
            name="OrderStatusCountsView",
            fields=[
                (
                    "status",
                    models.TextField(
                        db_comment="A latest status, or NULL (empty) for the orders that have no status row.",
                        primary_key=True,
                        serialize=False,
                    ),
                ),
                ("orders", models.BigIntegerField(db_comment="How many orders.")),
            ],
            options={
                "db_table": "reporting.order_status_counts",
                "db_table_comment": "Orders per latest status as of the last refresh; exact: order_status_counts_live.",
                "managed": False,
            },
        ),
        migrations.CreateModel(
            name="OrderStatusHistoryView",
            fields=[
                (
                    "status_id",
                    models.BigIntegerField(db_comment="The status row.", primary_key=True, serialize=False),
                ),
                (
                    "order_id",
                    models.BigIntegerField(db_comment="The order (its key in the declared source)."),
                ),
                ("status", models.TextField(db_comment="The status this row records.")),
                ("created", models.DateTimeField(db_comment="When the order entered it.")),
                (
                    "previous_status",
                    models.TextField(db_comment="The status before it (empty for the first row).", null=True),
                ),
                (
                    "next_created",
                    models.DateTimeField(
                        db_comment="When the order left it (empty for the latest row).", null=True
                    ),
                ),
                (
                    "time_in_status",
                    models.DurationField(
                        db_comment="How long the order stayed in it; so far, for the latest."
                    ),
                ),
                ("latest", models.BooleanField(db_comment="Whether this is the order's latest status row.")),
            ],
            options={
                "db_table": "reporting.order_status_history",
                "db_table_comment": "Every status row of every order, sorted as the latest status is defined, with the status before it and the time spent in it. Filter on order_id for one order: any other filter reads the whole history first (seconds at a million orders).",
                "managed": False,
            },
        ),
        migrations.CreateModel(
            name="OrderStatusTransitionsLiveView",
            fields=[
                (
                    "status_id",
                    models.BigIntegerField(
                        db_comment="The status row that changed the status.",
                        primary_key=True,
                        serialize=False,
                    ),
                ),
                (
                    "order_id",
                    models.BigIntegerField(db_comment="The order (its key in the declared source)."),
                ),
                ("from_status", models.TextField(db_comment="The status before the change.")),
                ("to_status", models.TextField(db_comment="The status after the change.")),
                (
                    "created",
                    models.DateTimeField(
                        db_comment="When the status changed (that status row's created time)."
                    ),
                ),
                ("week", models.DateField(db_comment="The week of the change: its Monday (UTC).")),
                (
                    "since_first",
                    models.DurationField(
                        db_comment="The time from the order's first status row to this change."
                    ),
                ),
            ],
            options={
                "db_table": "reporting.order_status_transitions_live",
                "db_table_comment": "Every change of an order's status, exact at query time. Filter on to_status and week (or order_id): those filters reach the index.",
                "managed": False,
            },
        ),
        migrations.CreateModel(
            name="OrderStatusTransitionsView",
            fields=[
                (
                    "status_id",
                    models.BigIntegerField(
                        db_comment="The status row that changed the status.",
                        primary_key=True,
                        serialize=False,
                    ),
                ),
                (
                    "order_id",
                    models.BigIntegerField(db_comment="The order (its key in the declared source)."),
                ),
                ("from_status", models.TextField(db_comment="The status before the change.")),
                ("to_status", models.TextField(db_comment="The status after the change.")),
                (
                    "created",
                    models.DateTimeField(
                        db_comment="When the status changed (that status row's created time)."
                    ),
                ),
                ("week", models.DateField(db_comment="The week of the change: its Monday (UTC).")),
                (
                    "since_first",
                    models.DurationField(
                        db_comment="The time from the order's first status row to this change."
                    ),
                ),
            ],
            options={
                "db_table": "reporting.order_status_transitions",
                "db_table_comment": "Every change of an order's status (a status row whose previous row has another status), as of the last refresh; exact: order_status_transitions_live.",
                "managed": False,
            },
        ),
        migrations.CreateModel(
            name="OrdersView",
            fields=[
                (
                    "order_id",
                    models.BigIntegerField(
                        db_comment="The order (its key in the declared source).",
                        primary_key=True,
                        serialize=False,
                    ),
                ),
                ("created", models.DateTimeField(db_comment="When the order was created.")),
                ("day", models.DateField(db_comment="The day it was created (UTC).")),
            ],
            options={
                "db_table": "reporting.orders",
                "db_table_comment": "Every order. Join order_latest_status_live on order_id for its status. Filters on day or created read every order.",
                "managed": False,
            },
        ),
        migrations.CreateModel(
            name="OrderTransitionsDailyLiveView",
            fields=[
                (
                    "day",
                    models.DateField(
                        db_comment="The day of the change (UTC).", primary_key=True, serialize=False
                    ),
                ),
                ("from_status", models.TextField(db_comment="The status before the change.")),
                ("to_status", models.TextField(db_comment="The status after the change.")),
                ("transitions", models.BigIntegerField(db_comment="How many status changes.")),
            ],
            options={
                "db_table": "reporting.order_transitions_daily_live",
                "db_table_comment": "Status changes per day (UTC) and kind (from_status -> to_status), exact at query time.",
                "managed": False,
            },
        ),
        migrations.CreateModel(
            name="OrderTransitionsDailyView",
            fields=[
                (
                    "day",
                    models.DateField(
                        db_comment="The day of the change (UTC).", primary_key=True, serialize=False
                    ),
                ),
                ("from_status", models.TextField(db_comment="The status before the change.")),
                ("to_status", models.TextField(db_comment="The status after the change.")),
                ("transitions", models.BigIntegerField(db_comment="How many status changes.")),
            ],
            options={
                "db_table": "reporting.order_transitions_daily",
                "db_table_comment": "Status changes per day (UTC) and kind (from_status -> to_status), as of the last refresh; exact: order_transitions_daily_live.",
                "managed": False,
            },
        ),
        migrations.CreateModel(
            name="OrderTransitionTimesWeeklyLiveView",
            fields=[
                (
                    "week",
                    models.DateField(
                        db_comment="The week of the change: its Monday (UTC).",
                        primary_key=True,
                        serialize=False,
                    ),
                ),
                ("to_status", models.TextField(db_comment="The status reached.")),
                ("transitions", models.BigIntegerField(db_comment="How many changes into it that week.")),
                (
                    "median",
                    models.DurationField(db_comment="The median time from the order's first status row."),
                ),
                ("p90", models.DurationField(db_comment="The 90th percentile of that time.")),
            ],
            options={
                "db_table": "reporting.order_transition_times_weekly_live",
                "db_table_comment": "How long orders take to reach each status: the median and 90th percentile per week of the change, exact at query time. Filter on week (and on to_status).",
                "managed": False,
            },
        ),
        migrations.CreateModel(
            name="PendingChangesView",
            fields=[
                ("order_id", models.BigIntegerField(primary_key=True, serialize=False)),
            ],
            options={
                "db_table": "reporting_pending_changes",
                "managed": False,
            },
        ),
        migrations.CreateModel(
            name="Report",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
            ],
            options={
                "permissions": [
                    ("view_reports", "Can see the order reports: dashboard, API and CSV export"),
                    ("read_live", "Can ask the API for live reads, whose cost grows with the data"),
                    ("view_metrics", "Can read the Prometheus metrics (/metrics)"),
                ],
                "managed": False,
                "default_permissions": (),
            },
        ),
        migrations.CreateModel(
            name="SnapshotStateView",
            fields=[
                ("as_of", models.DateTimeField(primary_key=True, serialize=False)),
            ],
            options={
                "db_table": "reporting_snapshot_state",
                "managed": False,
            },
        ),
        migrations.CreateModel(
            name="ApiToken",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "name",
                    models.CharField(
                        blank=True, help_text="What it is for; unique per user.", max_length=100
                    ),
                ),
                ("digest", models.CharField(max_length=64, unique=True)),
                ("created", models.DateTimeField(auto_now_add=True)),
                (
                    "expires",
                    models.DateTimeField(
                        blank=True, help_text="Refused from then on; empty: never.", null=True
                    ),
                ),
                ("last_used", models.DateTimeField(blank=True, null=True)),
            ],
        ),
        migrations.CreateModel(
            name="AuditRun",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("started", models.DateTimeField()),
                ("duration", models.DurationField()),
                (
                    "outcome",
                    models.CharField(
                        choices=[
                            ("exact", "Exact: every key checked agrees with the history"),
                            (
                                "mismatch",
                                "Mismatch: keys whose real-time row differs from the history (recomputed)",
                            ),
                            (
                                "recomputing",
                                "Not checked: real-time reads recompute everything from the history",
                            ),
                        ],
                        max_length=16,
                    ),
                ),
                (
                    "generation",
                    models.BigIntegerField(
                        blank=True, help_text="The refresh run the views are of.", null=True
                    ),
                ),
                (
                    "range_keys",
                    models.IntegerField(default=0, help_text="Keys of the random key range checked."),
                ),
                (
                    "recent_keys",
                    models.IntegerField(
                        default=0, help_text="Keys changed since the previous audit checked."
                    ),
                ),
                (
                    "keys_checked",
                    models.IntegerField(default=0, help_text="Distinct keys checked (both parts)."),
                ),
                ("mismatches", models.IntegerField(default=0)),
                (
                    "mismatched_keys",
                    django.contrib.postgres.fields.ArrayField(
                        base_field=models.TextField(), blank=True, default=list, size=None
                    ),
                ),
                ("fold_snapshot", models.TextField(blank=True, default="")),
            ],
            options={
                "ordering": ["-id"],
            },
        ),
        migrations.CreateModel(
            name="BiRoleLimits",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("name", models.CharField(max_length=63, unique=True)),
                ("connection_limit", models.PositiveIntegerField()),
                ("statement_timeout", models.CharField(max_length=32)),
                ("idle_in_transaction_session_timeout", models.CharField(max_length=32)),
                ("transaction_timeout", models.CharField(default="10min", max_length=32)),
                ("created", models.DateTimeField(auto_now_add=True)),
            ],
            options={
                "verbose_name": "BI role limits",
                "verbose_name_plural": "BI role limits",
            },
        ),
        migrations.CreateModel(
            name="BiRoleLockout",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("name", models.CharField(max_length=63, unique=True)),
                ("locked_at", models.DateTimeField(auto_now_add=True)),
                ("terminations", models.PositiveIntegerField()),
                ("window", models.FloatField()),
                ("reason", models.TextField()),
            ],
            options={
                "verbose_name": "BI role lockout",
            },
        ),
        migrations.CreateModel(
            name="BiTermination",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("name", models.CharField(db_index=True, max_length=63)),
                ("at", models.DateTimeField(auto_now_add=True)),
                ("reason", models.TextField()),
            ],
        ),
        migrations.CreateModel(
            name="CsvExport",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("status", models.TextField()),
                ("started", models.DateTimeField(default=django.utils.timezone.now)),
            ],
        ),
        migrations.CreateModel(
            name="Fold",
            fields=[
                (
                    "generation",
                    models.BigIntegerField(
                        help_text="The refresh run the overlay corrects.", primary_key=True, serialize=False
                    ),
                ),
                (
                    "snapshot",
                    models.TextField(help_text="The MVCC snapshot of the latest fold (pg_snapshot as text)."),
                ),
                (
                    "snapshot_at",
                    models.DateTimeField(help_text="Everything committed before this is in the overlay."),
                ),
                ("folds", models.BigIntegerField(default=0)),
                ("orders", models.BigIntegerField(default=0, help_text="Orders in the overlay.")),
                ("changes", models.BigIntegerField(default=0, help_text="Change-log entries folded in.")),
                ("daily_exact", models.BooleanField(default=True)),
            ],
            options={
                "verbose_name": "overlay fold",
            },
        ),
        migrations.CreateModel(
            name="OrderChange",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                (
                    "order_ids",
                    django.contrib.postgres.fields.ArrayField(
                        base_field=models.BigIntegerField(), null=True, size=None
                    ),
                ),
                (
                    "xid",
                    reporting.models.Xid8Field(
                        db_default=django.db.models.expressions.RawSQL("pg_current_xact_id()", [])
                    ),
                ),
                (
                    "source",
                    models.CharField(
                        choices=[
                            ("order_insert", "Order created"),
                            ("order_delete", "Order deleted"),
                            ("order_update_old", "Order updated (its row before)"),
                            ("order_update_new", "Order updated (its row after)"),
                            ("status_insert", "Status row inserted"),
                            ("status_update", "Status row updated"),
                            ("status_delete", "Status row deleted"),
                            ("truncate", "Table truncated: every order changed"),
                            ("audit", "Found wrong by the audit: recomputed"),
                        ],
                        max_length=16,
                    ),
                ),
                ("logged_at", models.DateTimeField(db_default=django.db.models.functions.datetime.Now())),
            ],
            options={
                "verbose_name": "order change",
            },
        ),
        migrations.CreateModel(
            name="OverlayCount",
            fields=[
                (
                    "pk",
                    models.CompositePrimaryKey(
                        "generation",
                        "no_rows",
                        "status",
                        blank=True,
                        editable=False,
                        primary_key=True,
                        serialize=False,
                    ),
                ),
                ("generation", models.BigIntegerField()),
                (
                    "no_rows",
                    models.BooleanField(
                        default=False, help_text="The keys without rows (status is then '')."
                    ),
                ),
                ("status", models.TextField()),
                ("orders", models.BigIntegerField()),
            ],
        ),
        migrations.CreateModel(
            name="OverlayDaily",
            fields=[
                (
                    "pk",
                    models.CompositePrimaryKey(
                        "generation",
                        "day",
                        "no_rows",
                        "status",
                        blank=True,
                        editable=False,
                        primary_key=True,
                        serialize=False,
                    ),
                ),
                ("generation", models.BigIntegerField()),
                ("day", models.DateField()),
                (
                    "no_rows",
                    models.BooleanField(
                        default=False, help_text="The keys without rows (status is then '')."
                    ),
                ),
                ("status", models.TextField()),
                ("orders", models.BigIntegerField()),
            ],
        ),
        migrations.CreateModel(
            name="OverlayOrder",
            fields=[
                (
                    "pk",
                    models.CompositePrimaryKey(
                        "generation",
                        "order_id",
                        blank=True,
                        editable=False,
                        primary_key=True,
                        serialize=False,
                    ),
                ),
                ("generation", models.BigIntegerField()),
                ("order_id", models.BigIntegerField()),
                ("exists_now", models.BooleanField()),
                ("status_id", models.BigIntegerField(null=True)),
                ("status", models.TextField(null=True)),
                ("status_created", models.DateTimeField(null=True)),
                ("day", models.DateField(help_text="The day the order was created (UTC).", null=True)),
                ("status_since", models.DateTimeField(null=True)),
            ],
        ),
        migrations.CreateModel(
            name="OverlayTransition",
            fields=[
                (
                    "pk",
                    models.CompositePrimaryKey(
                        "generation",
                        "status_id",
                        blank=True,
                        editable=False,
                        primary_key=True,
                        serialize=False,
                    ),
                ),
                ("generation", models.BigIntegerField()),
                ("status_id", models.BigIntegerField()),
                ("order_id", models.BigIntegerField()),
                ("from_status", models.TextField()),
                ("to_status", models.TextField()),
                ("created", models.DateTimeField()),
                ("week", models.DateField()),
                ("since_first", models.DurationField()),
            ],
        ),
        migrations.CreateModel(
            name="OverlayTransitionDaily",
            fields=[
                (
                    "pk",
                    models.CompositePrimaryKey(
                        "generation",
                        "day",
                        "from_status",
                        "to_status",
                        blank=True,
                        editable=False,
                        primary_key=True,
                        serialize=False,
                    ),
                ),
                ("generation", models.BigIntegerField()),
                ("day", models.DateField()),
                ("from_status", models.TextField()),
                ("to_status", models.TextField()),
                ("transitions", models.BigIntegerField()),
            ],
        ),
        migrations.CreateModel(
            name="RefreshLock",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
            ],
            options={
                "verbose_name": "refresh lock",
            },
        ),
        migrations.CreateModel(
            name="RefreshRun",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                (
                    "views",
                    models.TextField(help_text="The views refreshed, comma-separated, dependencies first."),
                ),
                (
                    "trigger",
                    models.CharField(
                        choices=[
                            ("schedule", "Schedule"),
                            ("manual", "Manual"),
                            ("startup", "Scheduler start-up"),
                        ],
                        max_length=16,
                    ),
                ),
                (
                    "outcome",
                    models.CharField(
                        choices=[
                            ("running", "Running"),
                            ("ok", "Refreshed"),
                            ("unchanged", "Skipped: nothing changed since the last refresh"),
                            ("skipped", "Skipped: another refresh was running"),
                            ("failed", "Failed"),
                            ("abandoned", "Abandoned: its process stopped before it finished"),
                            ("cancelled", "Cancelled: stopped on request, rolled back"),
                        ],
                        max_length=16,
                    ),
                ),
                ("concurrently", models.BooleanField(default=True)),
                ("started", models.DateTimeField()),
                ("snapshot", models.TextField(blank=True, default="")),
                ("snapshot_at", models.DateTimeField(blank=True, null=True)),
                ("finished", models.DateTimeField(blank=True, null=True)),
                ("duration", models.DurationField(blank=True, null=True)),
                (
                    "rows",
                    models.BigIntegerField(
                        blank=True, help_text="Rows in order_latest_status after it.", null=True
                    ),
                ),
                (
                    "changes_absorbed",
                    models.BigIntegerField(
                        blank=True,
                        help_text="Rows written to the source tables that this refresh took in.",
                        null=True,
                    ),
                ),
                (
                    "view_filenodes",
                    django.contrib.postgres.fields.ArrayField(
                        base_field=models.BigIntegerField(), blank=True, null=True, size=None
                    ),
                ),
                (
                    "error",
                    models.TextField(
                        blank=True, default="", help_text="Why it failed, was skipped or was abandoned."
                    ),
                ),
                ("backend_pid", models.IntegerField(blank=True, null=True)),
            ],
            options={
                "ordering": ["-id"],
            },
        ),
        # The views themselves: pgviews-redux makes them from views_sql/ on
        # post_migrate, and the schema's drop removes them on the way back to zero.
        # Registered in the state only, which makes this migration reversible.
        migrations.SeparateDatabaseAndState(
            state_operations=[
                django_pgviews.db.migrations.operations.RegisterViewOperation(
                    name="OrderStatusTransitionsView",
                    materialized=True,
                    db_name="reporting.order_status_transitions",
                ),
                django_pgviews.db.migrations.operations.RegisterViewOperation(
                    name="OrderLatestRowLiveView",
                    materialized=False,
                    db_name="reporting.order_latest_row_live",
                ),
                django_pgviews.db.migrations.operations.RegisterViewOperation(
                    name="OrderStatusTransitionsLiveView",
                    materialized=False,
                    db_name="reporting.order_status_transitions_live",
                ),
                django_pgviews.db.migrations.operations.RegisterViewOperation(
                    name="OrderTransitionsDailyView",
                    materialized=True,
                    db_name="reporting.order_transitions_daily",
                ),
                django_pgviews.db.migrations.operations.RegisterViewOperation(
                    name="OrderLatestRowView",
                    materialized=False,
                    db_name="reporting.order_latest_row",
                ),
                django_pgviews.db.migrations.operations.RegisterViewOperation(
                    name="OrderStatusCountsLiveView",
                    materialized=False,
                    db_name="reporting.order_status_counts_live",
                ),
                django_pgviews.db.migrations.operations.RegisterViewOperation(
                    name="OrderLatestStatusLiveView",
                    materialized=False,
                    db_name="reporting.order_latest_status_live",
                ),
                django_pgviews.db.migrations.operations.RegisterViewOperation(
                    name="OrderTransitionTimesWeeklyLiveView",
                    materialized=False,
                    db_name="reporting.order_transition_times_weekly_live",
                ),
                django_pgviews.db.migrations.operations.RegisterViewOperation(
                    name="PendingChangesView",
                    materialized=False,
                    db_name="reporting_pending_changes",
                ),
                django_pgviews.db.migrations.operations.RegisterViewOperation(
                    name="OrderTransitionsDailyLiveView",
                    materialized=False,
                    db_name="reporting.order_transitions_daily_live",
                ),
                django_pgviews.db.migrations.operations.RegisterViewOperation(
                    name="FreshnessView",
                    materialized=False,
                    db_name="reporting.freshness",
                ),
                django_pgviews.db.migrations.operations.RegisterViewOperation(
                    name="OrderDailyStatusView",
                    materialized=True,
                    db_name="reporting.order_daily_status",
                ),
                django_pgviews.db.migrations.operations.RegisterViewOperation(
                    name="OrderStatusCountsView",
                    materialized=True,
                    db_name="reporting.order_status_counts",
                ),
                django_pgviews.db.migrations.operations.RegisterViewOperation(
                    name="SnapshotStateView",
                    materialized=False,
                    db_name="reporting_snapshot_state",
                ),
                django_pgviews.db.migrations.operations.RegisterViewOperation(
                    name="OrderDailyStatusLiveView",
                    materialized=False,
                    db_name="reporting.order_daily_status_live",
                ),
                django_pgviews.db.migrations.operations.RegisterViewOperation(
                    name="OrderLatestStatusView",
                    materialized=True,
                    db_name="reporting.order_latest_status",
                ),
                django_pgviews.db.migrations.operations.RegisterViewOperation(
                    name="OrdersView",
                    materialized=False,
                    db_name="reporting.orders",
                ),
                django_pgviews.db.migrations.operations.RegisterViewOperation(
                    name="OrderStatusHistoryView",
                    materialized=False,
                    db_name="reporting.order_status_history",
                ),
            ]
        ),
        migrations.CreateModel(
            name="OrderLatestStatus",
            fields=[
                ("status_id", models.BigIntegerField()),
                ("status", models.CharField(max_length=16)),
                ("status_created", models.DateTimeField()),
                ("status_since", models.DateTimeField()),
                (
                    "order",
                    models.OneToOneField(
                        db_constraint=False,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        primary_key=True,
                        related_name="latest_status",
                        serialize=False,
                        to="reporting.keyrow",
                    ),
                ),
            ],
            options={
                "verbose_name": "order latest status",
                "verbose_name_plural": "order latest statuses",
                "db_table": 'reporting"."order_latest_status',
                "abstract": False,
                "managed": False,
                "base_manager_name": "objects",
            },
            bases=(reporting.read_models.ReadOnlyModelMixin, models.Model),
        ),
        migrations.CreateModel(
            name="OrderLatestStatusLive",
            fields=[
                ("status_id", models.BigIntegerField()),
                ("status", models.CharField(max_length=16)),
                ("status_created", models.DateTimeField()),
                ("status_since", models.DateTimeField()),
                (
                    "order",
                    models.OneToOneField(
                        db_constraint=False,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        primary_key=True,
                        related_name="latest_status_live",
                        serialize=False,
                        to="reporting.keyrow",
                    ),
                ),
            ],
            options={
                "verbose_name": "order latest status (real-time)",
                "verbose_name_plural": "order latest statuses (real-time)",
                "db_table": 'reporting"."order_latest_status_live',
                "abstract": False,
                "managed": False,
                "base_manager_name": "objects",
            },
            bases=(reporting.read_models.ReadOnlyModelMixin, models.Model),
        ),
        migrations.AddField(
            model_name="apitoken",
            name="user",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE,
                related_name="api_tokens",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddIndex(
            model_name="auditrun",
            index=models.Index(fields=["started"], name="auditrun_started_idx"),
        ),
        migrations.AddField(
            model_name="csvexport",
            name="token",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="reporting.apitoken",
            ),
        ),
        migrations.AddField(
            model_name="csvexport",
            name="user",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE, related_name="+", to=settings.AUTH_USER_MODEL
            ),
        ),
        migrations.AddIndex(
            model_name="orderchange",
            index=models.Index(fields=["xid"], name="orderchange_xid"),
        ),
        migrations.AddIndex(
            model_name="orderchange",
            index=models.Index(
                condition=models.Q(("order_ids__isnull", True)),
                fields=["xid"],
                name="orderchange_truncate_xid",
            ),
        ),
        migrations.AddIndex(
            model_name="overlayorder",
            index=models.Index(
                fields=["status", "-status_created", "-order_id"],
                include=("status_id", "generation", "status_since"),
                name="overlayorder_since_keyset",
            ),
        ),
        migrations.AddIndex(
            model_name="overlaytransition",
            index=models.Index(fields=["generation", "order_id"], name="overlaytransition_order"),
        ),
        migrations.AddIndex(
            model_name="overlaytransition",
            index=models.Index(
                fields=["generation", "to_status", "week"],
                include=("since_first",),
                name="overlaytransition_week",
            ),
        ),
        migrations.AddIndex(
            model_name="refreshrun",
            index=models.Index(
                condition=models.Q(("outcome", "ok")), fields=["-id"], name="refreshrun_latest_ok_idx"
            ),
        ),
        migrations.AddConstraint(
            model_name="apitoken",
            constraint=models.UniqueConstraint(
                condition=models.Q(("name", ""), _negated=True),
                fields=("user", "name"),
                name="apitoken_unique_name_per_user",
            ),
        ),
        migrations.AddIndex(
            model_name="csvexport",
            index=models.Index(fields=["user", "token", "-started"], name="csvexport_recent_idx"),
        ),
        # The change log's arrays of keys out of line and uncompressed: pglz spent up
        # to 0.5 s compressing the array of a 100,000-row statement, for a row that
        # lives only until the next fold (docs/architecture.md, "Change log").
        migrations.RunSQL(
            "ALTER TABLE reporting_orderchange ALTER COLUMN order_ids SET STORAGE EXTERNAL",
            reverse_sql=migrations.RunSQL.noop,
        ),
        migrations.RunSQL(FUNCTIONS, reverse_sql=DROP_FUNCTIONS),
        migrations.RunPython(apply_grants, migrations.RunPython.noop),
    ]
