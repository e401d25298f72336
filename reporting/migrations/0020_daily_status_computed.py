from django.db import migrations

from reporting.sql_files import frozen_sql

# The live strategy's daily counts, moved from a query string in the selectors to
# a versioned SQL function (reporting/migrations/sql/order_daily_status_computed_v1.sql), next to
# every other read.
DAILY = frozen_sql("order_daily_status_computed_v1")


class Migration(migrations.Migration):

    dependencies = [
        ("reporting", "0019_latest_row_views"),
    ]

    operations = [
        # Its body reads the views generated from REPORTING_SOURCE, which migrate
        # installs when it ends: not checked now.
        migrations.RunSQL(
            ["SET LOCAL check_function_bodies = off", DAILY, "RESET check_function_bodies"],
            reverse_sql="DROP FUNCTION public.reporting_order_daily_status_computed(date, date)",
        ),
    ]
