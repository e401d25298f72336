"""Installs the SQL generated from the declared source, and reads what is installed.

:mod:`reporting.source_sql` compiles the statements; this module runs them
(``migrate`` calls :func:`source_install` after every run, and again whenever
the declaration changed), retypes the maintained state when the declared keys
change kind, fingerprints what is installed, checks the change-log triggers and
prints the whole installation (``manage.py reporting_sql``).
"""

from __future__ import annotations

__all__ = ["change_log_problems", "installation_sql", "source_install"]

import logging
from typing import Any

from django.db import Error as DatabaseError
from django.db import connections, transaction
from psycopg import sql

from reporting.declaration import Source, source
from reporting.source_sql import (
    CHANGE_LOG,
    COLUMNS_VIEW,
    FUNCTIONS,
    HISTORY_TRIGGERS,
    HISTORY_VIEW,
    KEY_FUNCTIONS,
    KEY_TRIGGERS,
    KEYS_VIEW,
    columns_statements,
    core_statements,
    fingerprint,
    key_function_sql,
    source_statements,
    stored_key_type,
    trigger_names,
)

logger = logging.getLogger(__name__)


# How long an install waits for the declared tables before it gives up (migrate
# can simply be run again).
LOCK_TIMEOUT_MS = 10_000


# The validated foreign keys from the history's key column to the parent's key column.
FOREIGN_KEY_SQL = """
SELECT c.conname, c.convalidated FROM pg_constraint AS c
JOIN pg_attribute AS a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
JOIN pg_attribute AS pa ON pa.attrelid = c.confrelid AND pa.attnum = c.confkey[1]
WHERE c.contype = 'f' AND c.conrelid = to_regclass(%s) AND c.confrelid = to_regclass(%s)
  AND cardinality(c.conkey) = 1 AND a.attname = %s AND pa.attname = %s
ORDER BY c.convalidated DESC, c.conname
"""


# The triggers calling either log function, on whatever table they are.
INSTALLED_TRIGGERS_SQL = """
SELECT t.tgname, t.tgrelid::regclass::text FROM pg_trigger AS t
WHERE NOT t.tgisinternal AND t.tgfoid IN (
    SELECT p.oid FROM pg_proc AS p JOIN pg_namespace AS n ON n.oid = p.pronamespace
    WHERE n.nspname = 'public' AND p.proname IN ('reporting_log_history_changes', 'reporting_log_key_changes')
)
"""


VIEW_COMMENT_SQL = "SELECT obj_description(to_regclass('public.reporting_orderstatus'), 'pg_class')"


# The maintained state's key columns: (table, column, the column's type for key type T).
KEY_COLUMNS = (
    ("public.reporting_orderchange", "order_ids", "{}[]"),
    ("public.reporting_overlayorder", "order_id", "{}"),
    ("public.reporting_overlaytransition", "order_id", "{}"),
)


# Emptied when the key's type changes: keys of the old type mean nothing any more.
KEYED_STATE = (
    "public.reporting_orderchange",
    "public.reporting_overlayorder",
    "public.reporting_overlaytransition",
    "public.reporting_overlaycount",
    "public.reporting_overlaydaily",
    "public.reporting_overlaytransitiondaily",
    "public.reporting_fold",
)


# Every overload of the functions that carry keys, whatever types its arguments have.
DROP_KEY_FUNCTIONS_SQL = """
DO $drop$
DECLARE f regprocedure;
BEGIN
    FOR f IN
        SELECT p.oid::regprocedure FROM pg_proc AS p JOIN pg_namespace AS n ON n.oid = p.pronamespace
        WHERE n.nspname = 'public' AND p.proname IN (
            'reporting_latest_status_recomputed', 'reporting_latest_status_rows',
            'reporting_latest_status_page', 'reporting_overlay_fold', 'reporting_overlay_fold_apply',
            'reporting_overlay_fold_tables'
        )
    LOOP
        EXECUTE format('DROP FUNCTION %s CASCADE', f);
    END LOOP;
END
$drop$
"""


# The relations a view reads (by oid), from its rewrite rule's dependencies.
VIEW_READS_SQL = """
SELECT DISTINCT d.refobjid FROM pg_rewrite AS r JOIN pg_depend AS d ON d.objid = r.oid
WHERE r.ev_class = to_regclass(%s) AND d.refobjid <> r.ev_class AND d.classid = 'pg_rewrite'::regclass
  AND d.refclassid = 'pg_class'::regclass
"""


COLUMN_TYPE_SQL = """
SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute AS a
WHERE a.attrelid = to_regclass(%s) AND a.attname = %s AND NOT a.attisdropped
"""


def declared_key_type(cursor: Any, src: Source) -> str:
    """The stored type of the declared keys (``bigint`` before the history's table exists)."""
    cursor.execute(COLUMN_TYPE_SQL, [src.history.identifier().as_string(cursor.connection), src.key])
    row = cursor.fetchone()
    return stored_key_type(row[0]) if row else "bigint"


def installed_key_types(cursor: Any) -> set[str]:
    """The key types the maintained state's tables and functions have now (one, unless half retyped)."""
    types = set()
    for table, column, pattern in KEY_COLUMNS:
        cursor.execute(COLUMN_TYPE_SQL, [table, column])
        row = cursor.fetchone()
        if row is not None:
            types.add(row[0].removesuffix("[]") if pattern.endswith("[]") else row[0])
    cursor.execute(
        "SELECT pg_get_function_result(p.oid) FROM pg_proc AS p "
        "WHERE p.oid = to_regproc('public.reporting_latest_status_rows')"
    )
    row = cursor.fetchone()
    if row is not None:
        types.add(row[0].removeprefix("TABLE(order_id ").partition(",")[0])
    return types


def _retype_keys(cursor: Any, key_type: str) -> None:
    """Make the maintained state keep keys as ``key_type``: everything keyed is emptied or made anew.

    The reporting views go (the view sync after migrate makes them again), the
    keyed state is emptied, its key columns change type, and the functions that
    carry keys are made again for it.
    """
    from django.apps import apps
    from django_pgviews import view as pg
    from django_pgviews.dependencies import reorder_by_dependencies

    views = [m for m in apps.get_models() if isinstance(m, type) and issubclass(m, pg.View)]
    for model in reversed(reorder_by_dependencies(views)):
        kind = "MATERIALIZED VIEW" if issubclass(model, pg.MaterializedView) else "VIEW"
        schema, _, name = model._meta.db_table.rpartition(".")
        cursor.execute(
            sql.SQL(f"DROP {kind} IF EXISTS {{}} CASCADE")
            .format(sql.Identifier(schema or "public", name))
            .as_string(cursor.connection)
        )
    for view in (HISTORY_VIEW, KEYS_VIEW, COLUMNS_VIEW):
        cursor.execute(sql.SQL("DROP VIEW IF EXISTS {} CASCADE").format(view).as_string(cursor.connection))
    cursor.execute(DROP_KEY_FUNCTIONS_SQL)
    cursor.execute(f"TRUNCATE {', '.join(KEYED_STATE)}")
    for table, column, pattern in KEY_COLUMNS:
        cursor.execute(
            f"ALTER TABLE {table} ALTER COLUMN {column} TYPE {pattern.format(key_type)} USING NULL"
        )
    # A new type brings its default storage: the change log's key arrays stay out of
    # line and uncompressed (the initial migration says why), whatever their type.
    cursor.execute("ALTER TABLE public.reporting_orderchange ALTER COLUMN order_ids SET STORAGE EXTERNAL")
    # Their bodies read views the view sync makes only after migrate.
    cursor.execute("SET LOCAL check_function_bodies = off")
    for name in KEY_FUNCTIONS:
        cursor.execute(key_function_sql(name, key_type))
    cursor.execute("SET LOCAL check_function_bodies = on")
    logger.warning("The declared keys are %s: the reporting state was emptied and retyped for them", key_type)


def parent_foreign_key(cursor: Any, src: Source) -> tuple[str, bool] | None:
    """The foreign key from the history's key to the parent's: ``(name, validated)``, or ``None``."""
    raw = cursor.connection
    cursor.execute(
        FOREIGN_KEY_SQL,
        [
            src.history.identifier().as_string(raw),
            src.parent.identifier().as_string(raw),
            src.key,
            src.parent_key,
        ],
    )
    row = cursor.fetchone()
    return (row[0], row[1]) if row else None


def keys_checked(cursor: Any, src: Source) -> bool:
    """Whether a validated foreign key makes every key of the history a parent's key."""
    found = parent_foreign_key(cursor, src)
    return found is not None and found[1]


# Our triggers on a table, and how they fire: 'A' always, 'O' in origin sessions
# only, 'R' in replica sessions only, 'D' never.
TRIGGER_STATE_SQL = """
SELECT t.tgname, t.tgenabled FROM pg_trigger AS t
WHERE t.tgrelid = to_regclass(%s) AND NOT t.tgisinternal AND t.tgname = ANY(%s)
"""


def change_log_problems(cursor: Any, src: Source) -> list[str]:
    """What keeps writes to the declared tables out of the change log: a trigger missing or not always on.

    A disabled trigger (``ALTER TABLE ... DISABLE TRIGGER``, a restore with triggers
    off) lets writes through unlogged, and one enabled again by ``ENABLE TRIGGER``
    fires in origin sessions only. Nothing is reported before the source was installed.
    """
    installed, _ = installed_fingerprints(cursor)
    if installed is None:
        return []
    problems = []
    for table, prefix in ((src.history, HISTORY_TRIGGERS), (src.parent, KEY_TRIGGERS)):
        names = trigger_names(prefix)
        cursor.execute(TRIGGER_STATE_SQL, [table.identifier().as_string(cursor.connection), names])
        found = dict(cursor.fetchall())
        for name in names:
            state = found.get(name)
            if state is None:
                problems.append(f"trigger {name} on {table} is missing: its writes are not logged")
            elif state == "D":
                problems.append(f"trigger {name} on {table} is disabled: its writes are not logged")
            elif state != "A":
                problems.append(
                    f"trigger {name} on {table} fires only in {'origin' if state == 'O' else 'replica'} "
                    "sessions (enabled again by ENABLE TRIGGER?): writes of the others are not logged"
                )
    return problems


def wanted_fingerprint(cursor: Any, src: Source, statements: list[str]) -> str:
    """The fingerprint ``src`` installs with: its statements, and its tables' oids.

    By oid too: a table renamed or swapped in under the declared name changes
    what the views and triggers must be on.
    """
    raw = cursor.connection
    cursor.execute(
        "SELECT to_regclass(%s)::oid, to_regclass(%s)::oid",
        [
            src.parent.identifier().as_string(raw),
            src.history.identifier().as_string(raw),
        ],
    )
    return fingerprint([*statements, *map(str, cursor.fetchone())])


def app_migrated(using: str = "default") -> bool:
    """Whether the app's tables are there (not migrated back to zero)."""
    with connections[using].cursor() as cursor:
        cursor.execute("SELECT to_regclass('public.reporting_orderchange') IS NOT NULL")
        return bool(cursor.fetchone()[0])


def source_uninstall(*, using: str = "default") -> None:
    """Remove what :func:`source_install` made: the triggers on the declared tables, their
    functions and the generated views (with the reporting views over them).

    What ``migrate reporting zero`` runs last: triggers left behind would write to a
    change log that is gone, and fail every write to the declared tables.
    """
    connection = connections[using]
    with transaction.atomic(using=using), connection.cursor() as cursor:
        raw = cursor.connection
        cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT_MS}ms'")
        cursor.execute(INSTALLED_TRIGGERS_SQL)
        for name, table in cursor.fetchall():
            cursor.execute(f"DROP TRIGGER {sql.Identifier(name).as_string(raw)} ON {table}")
        for view in (COLUMNS_VIEW, KEYS_VIEW, HISTORY_VIEW):
            cursor.execute(sql.SQL("DROP VIEW IF EXISTS {} CASCADE").format(view).as_string(raw))
        cursor.execute(
            "DROP FUNCTION IF EXISTS public.reporting_log_history_changes(), "
            "public.reporting_log_key_changes()"
        )


# The migrations written before the first release, which the initial migration
# replaces: a database with some of them applied and not all cannot use it.
def partly_migrated_history(using: str = "default") -> list[str]:
    """The replaced migrations applied in this database, if some of them are and some are not."""
    from django.db.migrations.loader import MigrationLoader

    loader = MigrationLoader(connections[using], ignore_no_migrations=True)
    replaced = {
        name
        for key, migration in loader.replacements.items()
        if key[0] == "reporting"
        for _, name in migration.replaces
    }
    applied = {name for app, name in loader.applied_migrations if app == "reporting"} & replaced
    return sorted(applied) if applied and applied != replaced else []


def source_install(*, using: str = "default", force: bool = False) -> bool:
    """Install the declared source's views and triggers, unless they are installed as declared.

    In one transaction: the previous triggers (on whatever tables) go, the views
    are replaced, the new triggers come. A view whose columns change type cannot be
    replaced in place: it is dropped with what depends on it (the reporting views,
    which the view sync after every ``migrate`` rebuilds). If a refresh ever
    succeeded, the change log records a truncate: real-time reads recompute every
    key until the next refresh.

    Returns:
        Whether anything was (re)installed.
    """
    connection = connections[using]
    with transaction.atomic(using=using), connection.cursor() as cursor:
        raw = cursor.connection
        src = source()
        key_type = declared_key_type(cursor, src)
        core = [
            s.as_string(raw) for s in core_statements(src, key_type, keys_checked=keys_checked(cursor, src))
        ]
        columns = [s.as_string(raw) for s in columns_statements(src)]
        wanted = wanted_fingerprint(cursor, src, core)
        wanted_columns = fingerprint(columns)
        installed, _ = installed_fingerprints(cursor)
        # A migration may have deployed a function for bigint keys since.
        retype = installed_key_types(cursor) != {key_type}
        # Every lock below waits at most this long: a busy table fails the install
        # in seconds (migrate can be run again) rather than queueing its readers.
        cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT_MS}ms'")
        if installed == wanted and not force and not retype:
            if columns_view_current(cursor, src, wanted_columns):
                return False
            # Only what rows show changed (or its view went, or was replaced by
            # hand): the change log still holds.
            _install_columns(cursor, columns, wanted_columns)
            return True
        # Writers lock the keys before the history (an order, then its status row):
        # so does this, at once and up front, rather than upgrading locks one table
        # at a time, which deadlocks with them.
        cursor.execute(
            sql.SQL("LOCK TABLE {}, {} IN ACCESS EXCLUSIVE MODE")
            .format(
                src.parent.identifier(),
                src.history.identifier(),
            )
            .as_string(raw)
        )
        cursor.execute(INSTALLED_TRIGGERS_SQL)
        for name, table in cursor.fetchall():
            cursor.execute(f"DROP TRIGGER {sql.Identifier(name).as_string(raw)} ON {table}")
        if retype:
            _retype_keys(cursor, key_type)
        for view, statement in zip((HISTORY_VIEW, KEYS_VIEW), core[:2], strict=True):
            try:
                with transaction.atomic(using=using):
                    cursor.execute(statement)
            except DatabaseError:
                logger.warning("Rebuilding %s and the views over it: its columns change", view.as_string(raw))
                cursor.execute(sql.SQL("DROP VIEW IF EXISTS {} CASCADE").format(view).as_string(raw))
                cursor.execute(statement)
        _install_columns(cursor, columns, wanted_columns)
        for statement in core[2:]:
            cursor.execute(statement)
        cursor.execute(
            sql.SQL("COMMENT ON VIEW {} IS {}").format(HISTORY_VIEW, sql.Literal(wanted)).as_string(raw)
        )
        # Writes between the old triggers and these were not logged, and a changed
        # declaration may be another history entirely: for the views of any earlier
        # refresh, every key changed. Real-time reads recompute them until the next one.
        cursor.execute(
            sql.SQL(
                "INSERT INTO {} (order_ids, source) SELECT NULL, 'truncate' "
                "WHERE EXISTS (SELECT 1 FROM public.reporting_refreshrun WHERE outcome = 'ok')"
            )
            .format(CHANGE_LOG)
            .as_string(raw)
        )
        if installed is not None:
            logger.warning("REPORTING_SOURCE changed: real-time reads recompute every key until a refresh")
    return True


def installed_fingerprints(cursor: Any) -> tuple[str | None, str | None]:
    """The fingerprints the installed views carry: the history's, and the shown columns'."""
    cursor.execute(VIEW_COMMENT_SQL)
    installed = cursor.fetchone()[0]
    cursor.execute("SELECT obj_description(to_regclass('public.reporting_exposedcolumns'), 'pg_class')")
    return installed, cursor.fetchone()[0]


def columns_view_current(cursor: Any, src: Source, wanted: str | None = None) -> bool:
    """Whether the view of the columns to show is installed as ``src`` declares it.

    Its fingerprint (``wanted``, computed from ``src`` when not given) is its
    comment, and it reads the declared history: not a table that had its name
    before, nor one a view replaced by hand reads.
    """
    raw = cursor.connection
    if wanted is None:
        wanted = fingerprint([statement.as_string(raw) for statement in columns_statements(src)])
    _, installed = installed_fingerprints(cursor)
    cursor.execute(VIEW_READS_SQL, [COLUMNS_VIEW.as_string(raw)])
    reads = {row[0] for row in cursor.fetchall()}
    cursor.execute("SELECT to_regclass(%s)::oid", [src.history.identifier().as_string(raw)])
    return installed == wanted and reads == {cursor.fetchone()[0]}


def _install_columns(cursor: Any, statements: list[str], wanted: str) -> None:
    """(Re)make the view of the columns to show; the view sync after migrate remakes the views over it."""
    for statement in statements:
        cursor.execute(statement)
    cursor.execute(
        sql.SQL("COMMENT ON VIEW {} IS {}")
        .format(COLUMNS_VIEW, sql.Literal(wanted))
        .as_string(cursor.connection)
    )


def installation_sql() -> list[tuple[str, str]]:
    """Every statement that makes up the installation, for review: ``(what, statement)``, in order.

    The SQL generated from ``REPORTING_SOURCE``, then each reporting view as
    pgviews-redux creates it (dependencies first) with its indexes, then the SQL
    functions. ``manage.py reporting_sql`` prints it.
    """
    from django.apps import apps
    from django.db import connection
    from django_pgviews import view as pg
    from django_pgviews.dependencies import reorder_by_dependencies
    from django_pgviews.management.operations.create_materialized import (
        CustomSchemaEditor,
        _concurrent_index_name,
    )

    from reporting.sql_files import view_sql

    statements: list[tuple[str, str]] = []
    src = source()
    with connection.cursor() as cursor:
        raw = cursor.connection
        key_type = declared_key_type(cursor, src)
        statements += [
            ("generated from REPORTING_SOURCE", s.as_string(raw))
            for s in source_statements(src, key_type, keys_checked=keys_checked(cursor, src))
        ]
    models = [m for m in apps.get_models() if issubclass(m, pg.View)]
    # pgviews-redux's own editor: it writes a schema-qualified view name unquoted
    # into index statements, as it does when it creates them.
    with CustomSchemaEditor(connection, collect_sql=True) as editor:
        for model in reorder_by_dependencies(models):
            table = model._meta.db_table
            if issubclass(model, pg.MaterializedView):
                statements.append(
                    (f"materialized view {table}", f"CREATE MATERIALIZED VIEW {table} AS {model.sql}")
                )
                if model._concurrent_index:
                    name = _concurrent_index_name(table, model._concurrent_index)
                    statements.append(
                        (
                            "its unique index (for REFRESH ... CONCURRENTLY)",
                            f"CREATE UNIQUE INDEX {name} ON {table} ({model._concurrent_index})",
                        )
                    )
                for index in model._meta.indexes:
                    statements.append(("its index", str(index.create_sql(model, editor))))
            else:
                statements.append((f"view {table}", f"CREATE OR REPLACE VIEW {table} AS {model.sql}"))
    for name in FUNCTIONS:
        text = key_function_sql(name, key_type) if name in KEY_FUNCTIONS else view_sql(name)
        statements.append((f"function (views_sql/{name}.sql)", text))
    return statements
