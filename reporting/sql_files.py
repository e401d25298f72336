"""The SQL files of the app, read in the schema of ``REPORTING_SCHEMA``.

``views_sql/`` holds the current SQL of each view and function, edited in place;
``reporting/migrations/sql/`` what each migration deploys, frozen with it
(docs/architecture.md, "Changing the SQL").
"""

from __future__ import annotations

import re
from pathlib import Path

import views_sql
from reporting import conf

VIEWS_SQL_DIR = Path(views_sql.__file__).resolve().parent

# The PostgreSQL schema that holds every reporting view, and what BI roles see
# (REPORTING_SCHEMA). Read once, here: a model's db_table is fixed when it is declared.
SCHEMA = conf.schema()

# The view files name the schema "reporting", so that each of them reads (and runs
# in psql) as it is deployed by default; another REPORTING_SCHEMA replaces it.
_SCHEMA_IN_SQL = re.compile(r"\breporting\.(?=[a-z_])")


def in_schema(sql: str) -> str:
    """Return ``sql`` with the reporting views in the schema of ``REPORTING_SCHEMA``.

    SQL in this project names them ``reporting.<view>``, as deployed by default.
    """
    return _SCHEMA_IN_SQL.sub(f"{SCHEMA}.", sql) if SCHEMA != "reporting" else sql


def view_sql(name: str) -> str:
    """Return the current SQL of one object of ``views_sql/``, such as ``order_latest_status``.

    Args:
        name: the file name in ``views_sql/`` without ``.sql``.

    Returns:
        The query, without a trailing semicolon, in the schema of ``REPORTING_SCHEMA``.
    """
    return in_schema((VIEWS_SQL_DIR / f"{name}.sql").read_text().strip().rstrip(";"))


# What a migration deploys is frozen there, as it was: views_sql/ has only the
# current version of each object, edited in place (docs/architecture.md, "Changing the SQL").
FROZEN_SQL_DIR = Path(__file__).resolve().parent / "migrations" / "sql"


def frozen_sql(name: str) -> str:
    """Return what a migration deploys: ``reporting/migrations/sql/<name>.sql`` (``overlay_fold_v5``).

    Like :func:`view_sql`, in the schema of ``REPORTING_SCHEMA``.
    """
    return in_schema((FROZEN_SQL_DIR / f"{name}.sql").read_text().strip().rstrip(";"))
