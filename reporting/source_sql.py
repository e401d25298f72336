"""SQL generated from the declared source: the two views the machinery reads, the change log's triggers.

Every view, function and query of the reporting machinery reads the history
through ``public.reporting_orderstatus`` (``order_id``, ``id``, ``status``,
``created``) and its keys through ``public.reporting_order`` (``id``,
``created``). Those two are plain views, generated here from ``REPORTING_SOURCE``
over the tables it names; PostgreSQL inlines them into every query, so an index
of the declared table serves the query as if it named the table itself. The
change log is written by statement-level triggers on the declared tables,
generated here too.

Identifiers are always quoted (``psycopg.sql.Identifier``). This module only
compiles: :mod:`reporting.source_install` runs the statements (``migrate``, and
again whenever the declaration has changed since) and ``manage.py
reporting_sql`` prints them with the rest of the installation.
"""

from __future__ import annotations

__all__ = ["COLUMNS_VIEW", "FUNCTIONS", "HISTORY_VIEW", "KEYS_VIEW", "source_statements"]

import hashlib
import logging

from psycopg import sql

from reporting.declaration import Source, source

logger = logging.getLogger(__name__)


HISTORY_VIEW = sql.Identifier("public", "reporting_orderstatus")


KEYS_VIEW = sql.Identifier("public", "reporting_order")


COLUMNS_VIEW = sql.Identifier("public", "reporting_exposedcolumns")


HISTORY_LOG = sql.Identifier("public", "reporting_log_history_changes")


KEYS_LOG = sql.Identifier("public", "reporting_log_key_changes")


CHANGE_LOG = sql.Identifier("public", "reporting_orderchange")


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


# --- The type of the keys -----------------------------------------------------------------------------------
# Keys are stored as bigint for integer keys of any width (PostgreSQL compares
# integer with bigint through the key's own index), and as their own type
# otherwise (uuid). The tables of the maintained state and the SQL functions that
# carry keys are made by migrations for bigint; a source with keys of another
# type has them retyped when it is installed.
INTEGER_KEYS = frozenset({"smallint", "integer", "bigint"})


KEY_TYPES = INTEGER_KEYS | {"uuid"}


# How the SQL functions in views_sql/ spell the key's type; what deploys them puts
# the type in its place (bigint in the migrations).
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


def stored_key_type(column_type: str) -> str:
    """The type the maintained state keeps a key of ``column_type`` as."""
    return "bigint" if column_type in INTEGER_KEYS else column_type


def key_function_sql(name: str, key_type: str = "bigint") -> str:
    """The SQL of a function in ``KEY_FUNCTIONS`` for keys stored as ``key_type``."""
    from reporting.sql_files import view_sql

    return view_sql(name).replace(KEY_TYPE_MARK, key_type)


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


def source_statements(
    src: Source | None = None, key_type: str = "bigint", *, keys_checked: bool = False
) -> list[sql.Composable]:
    """Every statement that installs ``src`` (the declared source by default), in order.

    The two views, the view of the columns to show, the two log functions and
    their triggers; :func:`reporting.source_install.source_install` drops the previous triggers first.
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
