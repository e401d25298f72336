from django.db import migrations

from reporting.sql_files import frozen_sql

# The fold deletes the folded orders' overlay transitions by the row ids that one
# index range per order finds: on PostgreSQL 15, "order_id = ANY (array)" read the
# whole generation of a small overlay (reporting/migrations/sql/overlay_fold_v5.sql says more).
# Same signature and result: replaced in place, for the key type the overlay keeps
# now (bigint, or the declared keys' type, such as uuid).

KEY_TYPE_MARK = "bigint /*key_type*/"
KEY_TYPE_SQL = """
SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute AS a
WHERE a.attrelid = 'public.reporting_overlayorder'::regclass AND a.attname = 'order_id'
"""


def _deploy(name: str):
    def deploy(apps, schema_editor):
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(KEY_TYPE_SQL)
            (key_type,) = cursor.fetchone()
            # Its body reads the views generated from REPORTING_SOURCE, which migrate
            # installs when it ends: not checked now.
            cursor.execute("SET LOCAL check_function_bodies = off")
            cursor.execute(frozen_sql(name).replace(KEY_TYPE_MARK, key_type))
            cursor.execute("RESET check_function_bodies")

    return deploy


class Migration(migrations.Migration):
    dependencies = [
        ("reporting", "0023_status_since_and_null_for_no_rows"),
    ]

    operations = [
        migrations.RunPython(_deploy("overlay_fold_v5"), reverse_code=_deploy("overlay_fold_v4")),
    ]
