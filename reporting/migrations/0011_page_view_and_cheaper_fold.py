from django.db import migrations

from reporting.sql_files import frozen_sql

# New versions of SQL functions (a new version is a new file and a new migration):
# - the fold, v2: deletes the previous generation's overlay only when there is one
#   (each fold read the whole overlay to find none);
# - reporting_latest_status_recomputed(), which the real-time view v4 reads when
#   the change log cannot say what changed; pgviews-redux builds the view after
#   the migrations, so the function must exist by then;
# - reporting_latest_status_rows(), the real-time rows in no order, for whole
#   lists and point lookups (the view v4 is written for pages).
FOLD_V1 = frozen_sql("overlay_fold_v1")
FOLD_V2 = frozen_sql("overlay_fold_v2")
RECOMPUTED = frozen_sql("latest_status_recomputed_v1")
ROWS = frozen_sql("order_latest_status_rows_v1")


class Migration(migrations.Migration):
    dependencies = [
        ("reporting", "0010_overlay"),
    ]

    operations = [
        migrations.RunSQL(FOLD_V2, reverse_sql=FOLD_V1),
        # CASCADE on the way back: the view v4 reads it (pgviews-redux rebuilds the
        # views of the code migrated to after migrate).
        migrations.RunSQL(
            RECOMPUTED, reverse_sql="DROP FUNCTION public.reporting_latest_status_recomputed() CASCADE"
        ),
        # The views it reads are built after the migrations: PostgreSQL would check
        # a SQL function's body against them now.
        migrations.RunSQL(
            ["SET LOCAL check_function_bodies = off", ROWS, "RESET check_function_bodies"],
            reverse_sql="DROP FUNCTION public.reporting_latest_status_rows(text)",
        ),
    ]
