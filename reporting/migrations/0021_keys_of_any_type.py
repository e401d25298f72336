from django.db import migrations

from reporting.sql_files import frozen_sql

# The functions that carry keys spell the key's type "bigint /*key_type*/": deployed
# here as bigint, and again for another type (uuid) when a declared source has keys
# of that type (reporting/source_sql.py). The page function no longer needs a
# largest key to start the first page after (v3).
NEW = ["overlay_fold_v3", "order_latest_status_page_v3", "order_latest_status_rows_v2", "latest_status_recomputed_v3"]
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
OLD = ["overlay_fold_v2", "order_latest_status_page_v2", "order_latest_status_rows_v1", "latest_status_recomputed_v2"]


def _deploy(names: list[str]) -> list[str]:
    # Their bodies read the views generated from REPORTING_SOURCE, which migrate
    # installs when it ends: not checked now.
    return ["SET LOCAL check_function_bodies = off", *map(frozen_sql, names), "RESET check_function_bodies"]


class Migration(migrations.Migration):

    dependencies = [
        ("reporting", "0020_daily_status_computed"),
    ]

    operations = [
        # Back: the functions may carry uuid keys, which the old versions cannot
        # replace in place; migrate's install retypes them for the declared keys.
        migrations.RunSQL(_deploy(NEW), reverse_sql=[DROP_KEY_FUNCTIONS_SQL, *_deploy(OLD)]),
    ]
