from django.db import migrations, models

from reporting.sql_files import frozen_sql

# Statuses of any length: the overlay stores them as text, and so does the full
# recompute of the real-time view (v2); the generated view over the declared
# history reads them as text too (reporting/source_sql.py), so every part of the
# real-time views has one type. The views over the overlay and the generated views
# go first (a column a view reads cannot change type); the view sync after migrate
# builds them again, over the same data, and the generated views are installed
# again just before it.
DROP_VIEWS = """
DROP VIEW IF EXISTS public.reporting_pending_changes CASCADE;
DROP VIEW IF EXISTS public.reporting_orderstatus, public.reporting_order CASCADE;
DROP FUNCTION IF EXISTS public.reporting_latest_status_recomputed() CASCADE;
"""
RECOMPUTED_V1 = frozen_sql("latest_status_recomputed_v1")
RECOMPUTED_V2 = frozen_sql("latest_status_recomputed_v2")


class Migration(migrations.Migration):

    dependencies = [
        ("reporting", "0017_example_shop_app"),
    ]

    operations = [
        migrations.RunSQL(DROP_VIEWS, reverse_sql=RECOMPUTED_V1),
        migrations.AlterField(
            model_name="csvexport",
            name="status",
            field=models.TextField(),
        ),
        migrations.AlterField(
            model_name="overlayorder",
            name="status",
            field=models.TextField(null=True),
        ),
        migrations.RunSQL(RECOMPUTED_V2, reverse_sql=DROP_VIEWS),
    ]
