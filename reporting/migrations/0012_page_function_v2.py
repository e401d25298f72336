from django.db import migrations

from reporting.sql_files import frozen_sql

# reporting_latest_status_page() v2: one plan for every call, so that the
# selectors can run it as a prepared statement (reporting/migrations/sql/order_latest_status_page_v2.sql).
PAGE_V1 = frozen_sql("order_latest_status_page_v1")
PAGE_V2 = frozen_sql("order_latest_status_page_v2")


class Migration(migrations.Migration):
    dependencies = [
        ("reporting", "0011_page_view_and_cheaper_fold"),
    ]

    operations = [
        # The views it reads exist by now, but a fresh database builds them after
        # the migrations: PostgreSQL would check a SQL function's body against them.
        migrations.RunSQL(
            ["SET LOCAL check_function_bodies = off", PAGE_V2, "RESET check_function_bodies"],
            reverse_sql=["SET LOCAL check_function_bodies = off", PAGE_V1, "RESET check_function_bodies"],
        ),
    ]
