from django.db import migrations

from reporting.matviews import view_sql
from reporting.source_sql import DROP_KEY_FUNCTIONS_SQL

# The functions that carry keys spell the key's type "bigint /*key_type*/": deployed
# here as bigint, and again for another type (uuid) when a declared source has keys
# of that type (reporting/source_sql.py). The page function no longer needs a
# largest key to start the first page after (v3).
NEW = ["overlay_fold_v3", "order_latest_status_page_v3", "order_latest_status_rows_v2", "latest_status_recomputed_v3"]
OLD = ["overlay_fold_v2", "order_latest_status_page_v2", "order_latest_status_rows_v1", "latest_status_recomputed_v2"]


def _deploy(names: list[str]) -> list[str]:
    # Their bodies read the views generated from REPORTING_SOURCE, which migrate
    # installs when it ends: not checked now.
    return ["SET LOCAL check_function_bodies = off", *map(view_sql, names), "RESET check_function_bodies"]


class Migration(migrations.Migration):

    dependencies = [
        ("reporting", "0020_daily_status_computed"),
    ]

    operations = [
        # Back: the functions may carry uuid keys, which the old versions cannot
        # replace in place; migrate's install retypes them for the declared keys.
        migrations.RunSQL(_deploy(NEW), reverse_sql=[DROP_KEY_FUNCTIONS_SQL, *_deploy(OLD)]),
    ]
