from django.db import migrations, models

from reporting.sql_files import frozen_sql

# Two changes to the maintained state (issue 22):
#
# * status_since: every latest row says when its key entered its current status
#   (the first row of its final run of equal statuses), beside status_created (the
#   latest row's time). The overlay keeps it for the folded keys, and the
#   functions that return latest rows return it: their result type changes, so
#   they are dropped and made anew (CASCADE drops the real-time view that reads
#   one of them; the view sync after migrate makes it again, with the views whose
#   SQL changed).
# * Keys without rows count under status NULL in every relation, not under the
#   text 'none', which a history row may hold. The overlay's count tables keep
#   them as no_rows = true (reporting/models.py says why not NULL).

NEW = [
    "overlay_fold_v4",
    "order_latest_status_page_v4",
    "order_latest_status_rows_v3",
    "latest_status_recomputed_v4",
    "order_daily_status_computed_v2",
]
OLD = [
    "overlay_fold_v3",
    "order_latest_status_page_v3",
    "order_latest_status_rows_v2",
    "latest_status_recomputed_v3",
    "order_daily_status_computed_v1",
]
# Every overload of the functions that carry keys (a copy, so that this migration
# stays as it was: reporting/source_sql.py has the current one).
DROP_KEY_FUNCTIONS_SQL = """
DO $drop$
DECLARE f regprocedure;
BEGIN
    FOR f IN
        SELECT p.oid::regprocedure FROM pg_proc AS p JOIN pg_namespace AS n ON n.oid = p.pronamespace
        WHERE n.nspname = 'public' AND p.proname IN (
            'reporting_latest_status_recomputed', 'reporting_latest_status_rows',
            'reporting_latest_status_page', 'reporting_overlay_fold'
        )
    LOOP
        EXECUTE format('DROP FUNCTION %s CASCADE', f);
    END LOOP;
END
$drop$
"""
# The primary key of a table, whatever it is called, replaced by one on these columns.
PRIMARY_KEY_SQL = """
DO $pk$
BEGIN
    EXECUTE format(
        'ALTER TABLE {table} DROP CONSTRAINT %I, ADD PRIMARY KEY ({columns})',
        (SELECT c.conname FROM pg_constraint AS c WHERE c.conrelid = '{table}'::regclass AND c.contype = 'p')
    );
END
$pk$
"""


def _primary_key(table: str, columns: str) -> str:
    return PRIMARY_KEY_SQL.replace("{table}", table).replace("{columns}", columns)


def _deploy(names: list[str]) -> list[str]:
    # Their bodies read the views generated from REPORTING_SOURCE, which migrate
    # installs when it ends: not checked now.
    return ["SET LOCAL check_function_bodies = off", *map(frozen_sql, names), "RESET check_function_bodies"]


class Migration(migrations.Migration):

    dependencies = [
        ("reporting", "0022_comments_without_the_example_shops_words"),
    ]

    operations = [
        migrations.AddField(
            model_name="overlayorder",
            name="status_since",
            field=models.DateTimeField(null=True),
        ),
        migrations.RemoveIndex(
            model_name="overlayorder",
            name="overlayorder_status_keyset",
        ),
        migrations.AddIndex(
            model_name="overlayorder",
            index=models.Index(
                fields=["status", "-status_created", "-order_id"],
                include=("status_id", "generation", "status_since"),
                name="overlayorder_since_keyset",
            ),
        ),
        migrations.AddField(
            model_name="overlaycount",
            name="no_rows",
            field=models.BooleanField(default=False, help_text="The keys without rows (status is then '')."),
        ),
        migrations.AddField(
            model_name="overlaydaily",
            name="no_rows",
            field=models.BooleanField(default=False, help_text="The keys without rows (status is then '')."),
        ),
        # Django does not change a composite primary key in the database: done here.
        # 'none' was what the overlay called the keys without rows until now.
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    [
                        "UPDATE reporting_overlaycount SET no_rows = true, status = '' WHERE status = 'none'",
                        "UPDATE reporting_overlaydaily SET no_rows = true, status = '' WHERE status = 'none'",
                        _primary_key("reporting_overlaycount", "generation, no_rows, status"),
                        _primary_key("reporting_overlaydaily", "generation, day, no_rows, status"),
                    ],
                    reverse_sql=[
                        "UPDATE reporting_overlaycount SET status = 'none' WHERE no_rows",
                        "UPDATE reporting_overlaydaily SET status = 'none' WHERE no_rows",
                        _primary_key("reporting_overlaycount", "generation, status"),
                        _primary_key("reporting_overlaydaily", "generation, day, status"),
                    ],
                ),
            ],
            state_operations=[
                migrations.AlterField(
                    model_name="overlaycount",
                    name="pk",
                    field=models.CompositePrimaryKey(
                        "generation", "no_rows", "status", blank=True, editable=False, primary_key=True,
                        serialize=False,
                    ),
                ),
                migrations.AlterField(
                    model_name="overlaydaily",
                    name="pk",
                    field=models.CompositePrimaryKey(
                        "generation", "day", "no_rows", "status", blank=True, editable=False, primary_key=True,
                        serialize=False,
                    ),
                ),
            ],
        ),
        # Back: the functions may carry uuid keys, which the old versions cannot
        # replace in place; migrate's install retypes them for the declared keys.
        migrations.RunSQL(
            [DROP_KEY_FUNCTIONS_SQL, *_deploy(NEW)],
            reverse_sql=[DROP_KEY_FUNCTIONS_SQL, *_deploy(OLD)],
        ),
    ]
