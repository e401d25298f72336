"""SQL generated from the declared source: the two views the machinery reads, the change log's triggers.

Every view, function and query of the reporting machinery reads the history
through ``public.reporting_orderstatus`` (``order_id``, ``id``, ``status``,
``created``) and its keys through ``public.reporting_order`` (``id``,
``created``). Those two are plain views, generated here from ``REPORTING_SOURCE``
over the tables it names; PostgreSQL inlines them into every query, so an index
of the declared table serves the query as if it named the table itself. The
change log is written by statement-level triggers on the declared tables,
generated here too.

Identifiers are always quoted (``psycopg.sql.Identifier``). ``manage.py
reporting_sql`` prints these statements with the rest of the generated SQL;
``migrate`` installs them (:func:`source_install`), and again whenever the
declaration has changed since.
"""

from __future__ import annotations

__all__ = ["COLUMNS_VIEW", "HISTORY_VIEW", "KEYS_VIEW", "source_install", "source_statements"]

import hashlib
import logging
from typing import Any

from django.db import Error as DatabaseError
from django.db import connections, transaction
from psycopg import sql

from reporting.declaration import Source, source

logger = logging.getLogger(__name__)

HISTORY_VIEW = sql.Identifier("public", "reporting_orderstatus")
KEYS_VIEW = sql.Identifier("public", "reporting_order")
COLUMNS_VIEW = sql.Identifier("public", "reporting_exposedcolumns")
HISTORY_LOG = sql.Identifier("public", "reporting_log_history_changes")
KEYS_LOG = sql.Identifier("public", "reporting_log_key_changes")
CHANGE_LOG = sql.Identifier("public", "reporting_orderchange")
# How long an install waits for the declared tables before it gives up (migrate
# can simply be run again).
LOCK_TIMEOUT_MS = 10_000
# The views' comment records which declaration they were generated from.
FINGERPRINT_PREFIX = "reporting source "

# One log row per statement, with every key it touched in an array: building an
# array of the transition table is far cheaper than inserting (and indexing) a
# row per key. Duplicates are left in; readers group. Statement-level triggers
# with transition tables: PostgreSQL allows those only on single-event triggers,
# hence one trigger per event, all calling one function that knows the event
# from TG_OP.
HISTORY_LOG_SQL = """
CREATE OR REPLACE FUNCTION {function}() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        INSERT INTO {log} (order_ids, source) VALUES (NULL, 'truncate');
    ELSIF TG_OP = 'INSERT' THEN
        INSERT INTO {log} (order_ids, source)
        SELECT array_agg({key}::{key_type}), 'status_insert' FROM new_rows HAVING count(*) > 0;
    ELSIF TG_OP = 'UPDATE' THEN
        -- An update can move a row to another key: both changed.
        INSERT INTO {log} (order_ids, source)
        SELECT array_agg(k::{key_type}), 'status_update'
        FROM (SELECT {key} AS k FROM new_rows UNION ALL SELECT {key} FROM old_rows) AS touched
        HAVING count(*) > 0;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO {log} (order_ids, source)
        SELECT array_agg({key}::{key_type}), 'status_delete' FROM old_rows HAVING count(*) > 0;
    END IF;
    RETURN NULL;
END
$$
"""
# An update of a key row (its creation time, even its key) changes what the daily
# reports count: logged as two entries, the keys before and after, the old side
# first (readers take a key's first entry since their snapshot to know whether
# it existed then).
KEYS_LOG_SQL = """
CREATE OR REPLACE FUNCTION {function}() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        INSERT INTO {log} (order_ids, source) VALUES (NULL, 'truncate');
    ELSIF TG_OP = 'INSERT' THEN
        INSERT INTO {log} (order_ids, source)
        SELECT array_agg({key}::{key_type}), 'order_insert' FROM new_rows HAVING count(*) > 0;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO {log} (order_ids, source)
        SELECT array_agg({key}::{key_type}), 'order_delete' FROM old_rows HAVING count(*) > 0;
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO {log} (order_ids, source)
        SELECT array_agg({key}::{key_type}), 'order_update_old' FROM old_rows HAVING count(*) > 0;
        INSERT INTO {log} (order_ids, source)
        SELECT array_agg({key}::{key_type}), 'order_update_new' FROM new_rows HAVING count(*) > 0;
    END IF;
    RETURN NULL;
END
$$
"""
# The status as text, whatever its column's type (varchar(n), or char(n), whose
# padding the cast strips): every part of the real-time views then has one type.
HISTORY_VIEW_SQL = """
CREATE OR REPLACE VIEW {view} AS
SELECT s.{key} AS order_id, s.{row_id} AS id, s.{status}::text AS status, s.{created} AS created
FROM {table} AS s
WHERE s.{created} BETWEEN '{earliest}' AND '{latest}'{orphans}
"""
# The times a history row may have: what Python (and so the API, the pages and the
# selectors) can hold, with a day to spare for any time zone. PostgreSQL takes
# more ('infinity', BC dates, year 10000 and later); such a row is no change of
# status, in every strategy alike (check --database counts them, W006), so that it
# can neither freeze the folds nor fail a page.
EARLIEST = "0001-01-02 00:00:00+00"
LATEST = "9999-12-30 00:00:00+00"
# A key is a row of the parent: history rows of keys that have none are no key's,
# in every strategy alike. A validated foreign key already says so (the rows of a
# key deleted in an open transaction are handled like any change); without one,
# the view leaves such rows out, one index probe of the parent's key per row read.
ORPHANS_SQL = """
  AND EXISTS (SELECT 1 FROM {parent} AS k WHERE k.{parent_key} = s.{key})"""
# The validated foreign keys from the history's key column to the parent's key column.
FOREIGN_KEY_SQL = """
SELECT c.conname, c.convalidated FROM pg_constraint AS c
JOIN pg_attribute AS a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
JOIN pg_attribute AS pa ON pa.attrelid = c.confrelid AND pa.attnum = c.confkey[1]
WHERE c.contype = 'f' AND c.conrelid = to_regclass(%s) AND c.confrelid = to_regclass(%s)
  AND cardinality(c.conkey) = 1 AND a.attname = %s AND pa.attname = %s
ORDER BY c.convalidated DESC, c.conname
"""
KEYS_VIEW_SQL = """
CREATE OR REPLACE VIEW {view} AS
SELECT k.{key} AS id, k.{created} AS created
FROM {table} AS k
"""
# The columns a latest row shows (REPORTING_SOURCE["columns"]), by history row: the
# BI views order_latest_row(_live) join it to the latest rows (views_sql/), and
# the selectors read it for a page of rows. Always dropped and made anew: the views
# over it take its columns when they are made ("SELECT *"), so they must be made
# again too (the view sync after migrate does).
COLUMNS_VIEW_SQL = """
CREATE VIEW {view} AS
SELECT s.{row_id} AS status_id{columns}
FROM {table} AS s
"""
TRIGGER_SQL = {
    "INSERT": "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT",
    "UPDATE": "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT",
    "DELETE": "REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT",
    "TRUNCATE": "FOR EACH STATEMENT",
}
# The triggers calling either log function, on whatever table they are.
INSTALLED_TRIGGERS_SQL = """
SELECT t.tgname, t.tgrelid::regclass::text FROM pg_trigger AS t
WHERE NOT t.tgisinternal AND t.tgfoid IN (
    SELECT p.oid FROM pg_proc AS p JOIN pg_namespace AS n ON n.oid = p.pronamespace
    WHERE n.nspname = 'public' AND p.proname IN ('reporting_log_history_changes', 'reporting_log_key_changes')
)
"""
VIEW_COMMENT_SQL = "SELECT obj_description(to_regclass('public.reporting_orderstatus'), 'pg_class')"


# --- The type of the keys -----------------------------------------------------------------------------------
# Keys are stored as bigint for integer keys of any width (PostgreSQL compares
# integer with bigint through the key's own index), and as their own type
# otherwise (uuid). The tables of the maintained state and the SQL functions that
# carry keys are made by migrations for bigint; a source with keys of another
# type has them retyped when it is installed.
INTEGER_KEYS = frozenset({"smallint", "integer", "bigint"})
KEY_TYPES = INTEGER_KEYS | {"uuid"}
# How the SQL functions in views_sql/ spell the key's type; migrations deploy it as is.
KEY_TYPE_MARK = "bigint /*key_type*/"
# The functions that carry keys (views_sql/); their
# signatures change with the key's type, so they are dropped (DROP_KEY_FUNCTIONS_SQL)
# and made again.
KEY_FUNCTIONS = (
    "latest_status_recomputed",
    "order_latest_status_rows",
    "order_latest_status_page",
    "overlay_fold",
)
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
            'reporting_latest_status_page', 'reporting_overlay_fold'
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


def stored_key_type(column_type: str) -> str:
    """The type the maintained state keeps a key of ``column_type`` as."""
    return "bigint" if column_type in INTEGER_KEYS else column_type


def key_function_sql(name: str, key_type: str = "bigint") -> str:
    """The SQL of a function in ``KEY_FUNCTIONS`` for keys stored as ``key_type``."""
    from reporting.sql_files import view_sql

    return view_sql(name).replace(KEY_TYPE_MARK, key_type)


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
    # line and uncompressed (migration 0002 says why), whatever their type.
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


HISTORY_TRIGGERS = "reporting_history_log"
KEY_TRIGGERS = "reporting_key_log"


def trigger_names(prefix: str) -> list[str]:
    """The names of the change log's triggers on one table (one per event)."""
    return [f"{prefix}_{event.lower()}" for event in TRIGGER_SQL]


def _triggers(table: sql.Composable, prefix: str, function: sql.Identifier) -> list[sql.Composable]:
    # ENABLE ALWAYS: a trigger fires in every session, also one with
    # session_replication_role = replica (a logical-replication subscriber applying
    # the shop's writes, pg_restore --disable-triggers): a write the change log
    # misses would leave the real-time reads wrong until the next refresh.
    return [
        statement
        for name, (event, clause) in zip(trigger_names(prefix), TRIGGER_SQL.items(), strict=True)
        for statement in (
            sql.SQL("CREATE TRIGGER {} AFTER {} ON {} {} EXECUTE FUNCTION {}()").format(
                sql.Identifier(name), sql.SQL(event), table, sql.SQL(clause), function
            ),
            sql.SQL("ALTER TABLE {} ENABLE ALWAYS TRIGGER {}").format(table, sql.Identifier(name)),
        )
    ]


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


def source_statements(
    src: Source | None = None, key_type: str = "bigint", *, keys_checked: bool = False
) -> list[sql.Composable]:
    """Every statement that installs ``src`` (the declared source by default), in order.

    The two views, the view of the columns to show, the two log functions and
    their triggers; :func:`source_install` drops the previous triggers first.
    ``key_type`` is the type the change log keeps keys as (:func:`stored_key_type`);
    ``keys_checked``: a validated foreign key makes every history key a parent's.
    """
    src = src or source()
    core = core_statements(src, key_type, keys_checked=keys_checked)
    return [*core[:2], *columns_statements(src), *core[2:]]


def core_statements(
    src: Source, key_type: str = "bigint", *, keys_checked: bool = False
) -> list[sql.Composable]:
    """What reads and logs the declared history: its two views, the log functions and their triggers.

    A change to any of them may change what the change log means, so installing
    them again makes real-time reads recompute until the next refresh.
    """
    if key_type not in {stored_key_type(t) for t in KEY_TYPES}:
        raise ValueError(f"keys of type {key_type!r} cannot be kept")
    history = src.history.identifier()
    keys = src.parent.identifier()
    return [
        sql.SQL(HISTORY_VIEW_SQL.strip()).format(
            view=HISTORY_VIEW,
            key=sql.Identifier(src.key),
            row_id=sql.Identifier(src.row_id),
            status=sql.Identifier(src.status),
            created=sql.Identifier(src.created),
            table=history,
            earliest=sql.SQL(EARLIEST),
            latest=sql.SQL(LATEST),
            orphans=sql.SQL("")
            if keys_checked
            else sql.SQL(ORPHANS_SQL).format(
                parent=keys, parent_key=sql.Identifier(src.parent_key), key=sql.Identifier(src.key)
            ),
        ),
        sql.SQL(KEYS_VIEW_SQL.strip()).format(
            view=KEYS_VIEW,
            key=sql.Identifier(src.parent_key),
            created=sql.Identifier(src.parent_created),
            table=keys,
        ),
        sql.SQL(HISTORY_LOG_SQL.strip()).format(
            function=HISTORY_LOG, log=CHANGE_LOG, key=sql.Identifier(src.key), key_type=sql.SQL(key_type)
        ),
        sql.SQL(KEYS_LOG_SQL.strip()).format(
            function=KEYS_LOG, log=CHANGE_LOG, key=sql.Identifier(src.parent_key), key_type=sql.SQL(key_type)
        ),
        *_triggers(history, "reporting_history_log", HISTORY_LOG),
        *_triggers(keys, "reporting_key_log", KEYS_LOG),
    ]


def columns_statements(src: Source) -> list[sql.Composable]:
    """The view of the columns to show: only what a row shows, not what the change log means."""
    return [
        sql.SQL("DROP VIEW IF EXISTS {} CASCADE").format(COLUMNS_VIEW),
        sql.SQL(COLUMNS_VIEW_SQL.strip()).format(
            view=COLUMNS_VIEW,
            row_id=sql.Identifier(src.row_id),
            columns=sql.SQL("").join(sql.SQL(", s.{}").format(sql.Identifier(c)) for c in src.columns),
            table=src.history.identifier(),
        ),
    ]


def fingerprint(statements: list[str]) -> str:
    """What the views' comment records: a digest of the statements that made them."""
    return FINGERPRINT_PREFIX + hashlib.sha256("\n".join(statements).encode()).hexdigest()[:16]


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


def earlier_layout(using: str = "default") -> bool:
    """Whether ``public.reporting_orderstatus`` is a table: the layout before migration 0014."""
    with connections[using].cursor() as cursor:
        cursor.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass('public.reporting_orderstatus')")
        row = cursor.fetchone()
    return row is not None and row[0] == "r"


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


# The SQL functions of the machinery (views_sql/, edited in place). A migration
# deploys each change from a copy frozen in reporting/migrations/sql/ (a test checks
# that the latest copy is the file: an edit without its migration fails it).
FUNCTIONS = (
    "overlay_fold",
    "order_latest_status_page",
    "order_latest_status_rows",
    "latest_status_recomputed",
    "order_daily_status_computed",
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
