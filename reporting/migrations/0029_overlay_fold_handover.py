"""The fold in three functions (overlay_fold v6), so that a compaction can hand the
overlay on to its new generation before it commits (reporting/services/handover.py).

Deployed for the key type the maintained state keeps now (``bigint``, or the
declared keys' type after a retype, such as ``uuid``): the install after
``migrate`` remakes these functions only when that type changes.
"""

from django.db import migrations

from reporting.sql_files import frozen_sql

KEY_TYPE_MARK = "bigint /*key_type*/"
KEY_TYPE_SQL = """
SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute AS a
WHERE a.attrelid = 'public.reporting_overlayorder'::regclass AND a.attname = 'order_id'
"""
DROP_NEW = """
DROP FUNCTION IF EXISTS public.reporting_overlay_fold_apply(bigint, text, timestamptz, bigint, boolean);
DROP FUNCTION IF EXISTS public.reporting_overlay_fold_tables();
"""


def _deploy(schema_editor, name):
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(KEY_TYPE_SQL)
        key_type = cursor.fetchone()[0]
        # Their bodies read views the view sync makes only after migrate.
        cursor.execute("SET LOCAL check_function_bodies = off")
        cursor.execute(frozen_sql(name).replace(KEY_TYPE_MARK, key_type))
        cursor.execute("SET LOCAL check_function_bodies = on")


def forwards(apps, schema_editor):
    _deploy(schema_editor, "overlay_fold_v6")


def backwards(apps, schema_editor):
    _deploy(schema_editor, "overlay_fold_v5")
    schema_editor.execute(DROP_NEW)


class Migration(migrations.Migration):
    dependencies = [
        ("reporting", "0028_refresh_trigger_deploy"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
