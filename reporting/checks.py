"""System checks of the declared source (``REPORTING_SOURCE``), against the database's own catalog.

The shape of the setting is checked by every ``manage.py`` command; the tables,
columns, types and indexes it names are checked when a database is in play:
``manage.py check --database default``, and ``migrate``, which runs them before
it changes anything. So a declaration that names a missing column, a column of
the wrong type, or an ordering that no index serves stops the deployment with
one message, and never surfaces at a first read.
"""

from __future__ import annotations

__all__ = ["source_check", "source_database_check", "source_errors"]

import dataclasses
import re
from collections.abc import Iterable
from typing import Any

from django.core import checks
from django.db import connections
from django.db.utils import Error as DatabaseError
from psycopg import sql

from reporting.declaration import MAX_IDENTIFIER, DeclarationError, Source, Table, source
from reporting.source_install import (
    COLUMN_TYPE_SQL,
    VIEW_READS_SQL,
    columns_view_current,
    installed_fingerprints,
    keys_checked,
    parent_foreign_key,
)
from reporting.source_sql import (
    EARLIEST,
    KEY_TYPES,
    LATEST,
    stored_key_type,
)

# Apps the reporting app relies on, and what for.
REQUIRED_APPS = {
    "django_pgviews": "it declares and refreshes the reporting views",
    "django.contrib.humanize": "the dashboard's numbers",
}
INTEGERS = frozenset({"smallint", "integer", "bigint"})
# A key: an integer of any width, or a uuid (reporting/source_sql.py keeps either).
KEYS = KEY_TYPES
TIMESTAMPS = frozenset({"timestamp with time zone"})
# "character" pads values with blanks; the generated view reads the status as
# text, which strips them.
TEXTS = frozenset({"text", "character varying", "character"})

TABLE_SQL = """
SELECT c.oid, c.relkind FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE n.nspname = %s AND c.relname = %s
"""
COLUMNS_SQL = """
SELECT attname, attnum, format_type(atttypid, NULL), attnotnull, format_type(atttypid, atttypmod)
FROM pg_attribute
WHERE attrelid = %s AND attnum > 0 AND NOT attisdropped
"""
# A valid, total (no predicate) unique index on exactly one column.
UNIQUE_SQL = """
SELECT 1 FROM pg_index AS i
WHERE i.indrelid = %s AND i.indisunique AND i.indisvalid AND i.indpred IS NULL
  AND i.indnkeyatts = 1 AND i.indkey[0] = %s
"""
# A valid, total B-tree index whose first columns are (key, created, row id) in
# the order DISTINCT ON (key) ... ORDER BY key, created DESC, row id DESC reads in
# (and that finds a key's latest row in one probe): key ASC NULLS LAST, the others
# DESC NULLS FIRST, or all of it mirrored (read backwards). indoption bits: 1 is
# DESC, 2 is NULLS FIRST; PostgreSQL does not match NULLS LAST to a DESC order
# even on a NOT NULL column.
ORDERING_INDEX_SQL = """
SELECT 1 FROM pg_index AS i
JOIN pg_class AS ic ON ic.oid = i.indexrelid
JOIN pg_am AS am ON am.oid = ic.relam
WHERE i.indrelid = %(table)s AND am.amname = 'btree' AND i.indisvalid AND i.indpred IS NULL
  AND i.indnkeyatts >= 3
  AND i.indkey[0] = %(key)s AND i.indkey[1] = %(created)s AND i.indkey[2] = %(row_id)s
  AND ((i.indoption[0] & 3) = 0 AND (i.indoption[1] & 3) = 3 AND (i.indoption[2] & 3) = 3
       OR (i.indoption[0] & 3) = 3 AND (i.indoption[1] & 3) = 0 AND (i.indoption[2] & 3) = 0)
"""
# The tables the generated views read now (they follow a table by its oid, not its name).


@dataclasses.dataclass(frozen=True)
class Column:
    """A column as the catalog describes it."""

    number: int
    type: str
    not_null: bool
    #: The type with its modifier: ``character varying(16)``.
    full_type: str


def _error(message: str, hint: str | None = None, id: str = "reporting.E002") -> checks.Error:
    return checks.Error(message, hint=hint, id=id)


@checks.register()
def source_check(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """``REPORTING_SOURCE`` is well-formed, and the apps the reports need are installed."""
    from django.apps import apps

    errors: list[checks.CheckMessage] = [
        _error(
            f"the reporting app needs {app!r} in INSTALLED_APPS ({why})",
            f"add {app!r} to INSTALLED_APPS",
            id="reporting.E004",
        )
        for app, why in REQUIRED_APPS.items()
        if not apps.is_installed(app)
    ]
    try:
        source()
    except DeclarationError as exc:
        # Every problem at once, each with its own fix: a declaration is mended in one edit.
        errors += [
            _error(DeclarationError.line(entry, problem), fix or None, id="reporting.E001")
            for entry, problem, fix in exc.problems
        ]
    return errors


def _table(cursor: Any, table: Table, entry: str, kinds: str) -> tuple[int, dict[str, Column]] | str | None:
    """The table's oid and columns (name: (number, type)), what is wrong with it, or ``None``: not yet made.

    The table of a model that does not exist yet is made by ``migrate``, which checks
    it again when it ends (``source_installed_check``).
    """
    cursor.execute(TABLE_SQL, [table.schema, table.name])
    row = cursor.fetchone()
    if row is None:
        if table.model is not None:
            return None
        return f"REPORTING_SOURCE[{entry!r}] names {table}, which does not exist"
    oid, kind = row
    if kind not in kinds:
        return f"REPORTING_SOURCE[{entry!r}] names {table}, which is not a plain table (relkind {kind!r})"
    cursor.execute(COLUMNS_SQL, [oid])
    return oid, {
        name: Column(number, type_, not_null, full)
        for name, number, type_, not_null, full in cursor.fetchall()
    }


def _columns(
    table: Table, columns: dict[str, Column], wanted: Iterable[tuple[str, str, frozenset[str]]]
) -> list[checks.CheckMessage]:
    errors: list[checks.CheckMessage] = []
    for entry, column, types in wanted:
        if column not in columns:
            errors.append(
                _error(f"REPORTING_SOURCE[{entry!r}] names column {column!r}, which {table} does not have")
            )
        elif columns[column].type not in types:
            errors.append(
                _error(
                    f"REPORTING_SOURCE[{entry!r}] names column {table}.{column}, of type "
                    f"{columns[column].type}; it must be {' or '.join(sorted(types))}"
                )
            )
        elif not columns[column].not_null:
            # A NULL key, time or status has no latest row by the definition, and
            # the maintained state (the overlay, the change log) refuses it.
            errors.append(
                _error(
                    f"REPORTING_SOURCE[{entry!r}] names column {table}.{column}, which may be NULL; "
                    "it must be NOT NULL",
                    f"ALTER TABLE {table} ALTER COLUMN {column} SET NOT NULL (in a migration: null=False)",
                )
            )
    return errors


def _history_errors(cursor: Any, src: Source) -> list[checks.CheckMessage]:
    # A plain table: statement triggers on a partitioned table miss the writes made
    # to a partition directly, and a view has none.
    found = _table(cursor, src.history, "history", "r")
    if found is None:
        return []
    if isinstance(found, str):
        return [
            _error(found, "a history is a plain table (triggers log its changes), with one row per change")
        ]
    oid, columns = found
    errors = _columns(
        src.history,
        columns,
        [
            ("key", src.key, KEYS),
            ("latest_by", src.created, TIMESTAMPS),
            ("latest_by", src.row_id, INTEGERS),
            ("status", src.status, TEXTS | INTEGERS),
        ],
    )
    if src.status in columns and columns[src.status].type in INTEGERS:
        # An integer column holds no other value: a declared 'paid' could never be counted.
        errors += [
            _error(
                f"REPORTING_SOURCE['statuses'] holds {value!r}, which {src.history}.{src.status} "
                f"({columns[src.status].type}) can never hold",
                "declare the integer values (an IntegerChoices' values), with 'labels' for the words "
                "people read, or leave 'statuses' out to take both from the field's choices",
            )
            for value in src.statuses
            if not re.fullmatch(r"-?[0-9]+", value)
        ]
    errors += [
        _error(f"REPORTING_SOURCE['columns'] names column {column!r}, which {src.history} does not have")
        for column in src.columns
        if column not in columns
    ]
    if src.row_id not in columns:
        return errors
    cursor.execute(UNIQUE_SQL, [oid, columns[src.row_id].number])
    if cursor.fetchone() is None:
        errors.append(
            _error(
                f"REPORTING_SOURCE['latest_by'] breaks ties with {src.history}.{src.row_id}, which no unique "
                "index covers: two rows could tie, and the latest would be undefined",
                "use the table's primary key as the second column of latest_by",
            )
        )
    if src.key not in columns or src.created not in columns:
        return errors
    cursor.execute(
        ORDERING_INDEX_SQL,
        {
            "table": oid,
            "key": columns[src.key].number,
            "created": columns[src.created].number,
            "row_id": columns[src.row_id].number,
        },
    )
    if cursor.fetchone() is None:
        index = sql.SQL("CREATE INDEX CONCURRENTLY ON {} ({}, {} DESC, {} DESC)").format(
            src.history.identifier(),
            sql.Identifier(src.key),
            sql.Identifier(src.created),
            sql.Identifier(src.row_id),
        )
        errors.append(
            _error(
                f"no index of {src.history} serves its latest row per {src.key}: reads of it would sort the "
                "whole history",
                "create one (in a migration of your project, or by hand): "
                + index.as_string(cursor.connection),
            )
        )
    return errors


def _parent_errors(cursor: Any, src: Source) -> list[checks.CheckMessage]:
    found = _table(cursor, src.parent, "parent", "r")
    if found is None:
        return []
    if isinstance(found, str):
        return [_error(found, "the keys are a plain table (triggers log its changes)")]
    oid, columns = found
    wanted = [("parent_key", src.parent_key, KEYS), ("parent_created", src.parent_created, TIMESTAMPS)]
    errors = _columns(src.parent, columns, wanted)
    if src.parent_key not in columns:
        return errors
    cursor.execute(UNIQUE_SQL, [oid, columns[src.parent_key].number])
    if cursor.fetchone() is None:
        errors.append(
            _error(
                f"REPORTING_SOURCE['parent_key'] names {src.parent}.{src.parent_key}, which no unique index "
                "covers: a key listed twice would be counted twice",
                "use the table's primary key",
            )
        )
    return errors


def _installed_errors(cursor: Any, src: Source) -> list[checks.CheckMessage]:
    """The generated views read the declared tables: not others that had their names before."""
    errors: list[checks.CheckMessage] = []
    raw = cursor.connection
    # Without a validated foreign key the history's view reads the parent too (to
    # leave out rows of keys that have no parent row).
    history_reads = [src.history] if keys_checked(cursor, src) else [src.history, src.parent]
    for view, tables in (
        ("public.reporting_orderstatus", history_reads),
        ("public.reporting_order", [src.parent]),
    ):
        cursor.execute(
            "SELECT to_regclass(%s)::oid, to_regclass(%s)::oid",
            [tables[0].identifier().as_string(raw), tables[-1].identifier().as_string(raw)],
        )
        declared = set(cursor.fetchone())
        cursor.execute(VIEW_READS_SQL, [view])
        reads = {row[0] for row in cursor.fetchall()}
        if reads and None not in declared and reads != declared:
            # A warning, not an error: an error would stop the very migrate that mends it.
            errors.append(
                checks.Warning(
                    f"{view} reads another table than {tables[0]}, which REPORTING_SOURCE names, or "
                    "reads it otherwise than declared (was a table renamed or replaced, or a foreign "
                    "key from the history to the parent added or dropped?)",
                    hint="run manage.py migrate: it installs the views and triggers again",
                    id="reporting.W002",
                )
            )
    installed, _ = installed_fingerprints(cursor)
    if installed is not None and not columns_view_current(cursor, src):
        errors.append(
            checks.Warning(
                "public.reporting_exposedcolumns, the view of the columns REPORTING_SOURCE declares to "
                "show, is missing or not as declared: the order_latest_row views, and lists while "
                "columns are declared, may fail or show other columns",
                hint="run manage.py migrate: it installs it again",
                id="reporting.W003",
            )
        )
    return errors


def _foreign_key_warnings(cursor: Any, src: Source) -> list[checks.CheckMessage]:
    """A history whose key no validated foreign key ties to the parent: say what happens, and the fix."""
    found = parent_foreign_key(cursor, src)
    if found is not None and found[1]:
        return []
    raw = cursor.connection
    history = src.history.identifier().as_string(raw)
    name = found[0] if found else f"{src.history.name}_{src.key}_reporting_fk"[:MAX_IDENTIFIER]
    constraint = sql.Identifier(name).as_string(raw)
    validate = f"ALTER TABLE {history} VALIDATE CONSTRAINT {constraint}"
    add = (
        f"ALTER TABLE {history} ADD CONSTRAINT {constraint} FOREIGN KEY "
        f"({sql.Identifier(src.key).as_string(raw)}) REFERENCES {src.parent.identifier().as_string(raw)} "
        f"({sql.Identifier(src.parent_key).as_string(raw)}) NOT VALID; "
    )
    return [
        checks.Warning(
            f"{src.history}.{src.key} has no {'validated ' if found else ''}foreign key to "
            f"{src.parent}.{src.parent_key}: history rows of keys that have no row in {src.parent} are "
            "left out of every count and list, in every strategy, at the cost of one lookup of the "
            "key in the parent per history row read",
            hint=("" if found else add) + validate + " (NOT VALID adds it without checking the rows "
            "already there; VALIDATE then checks them without blocking writes); then run manage.py migrate",
            id="reporting.W004",
        )
    ]


# Whether the reporting views were ever filled: undeclared values are read from them.
POPULATED_SQL = (
    "SELECT ispopulated FROM pg_matviews WHERE schemaname = %s AND matviewname = 'order_status_counts'"
)


def _undeclared_warnings(cursor: Any, src: Source) -> list[checks.CheckMessage]:
    """The latest statuses that the declaration does not list, with their counts (one real-time count)."""
    from reporting import conf, selectors

    cursor.execute(POPULATED_SQL, [conf.schema()])
    row = cursor.fetchone()
    if not row or not row[0]:
        return []
    undeclared = selectors.undeclared_status_counts()
    if not undeclared:
        return []
    listed = ", ".join(f"{status!r} ({n:,} orders)" for status, n in list(undeclared.items())[:20])
    return [
        checks.Warning(
            f"the history holds status values that REPORTING_SOURCE['statuses'] does not list: {listed}. "
            "They are counted and listed under their own value, and flagged as undeclared",
            hint="add them to REPORTING_SOURCE['statuses'] if they are statuses of yours, or mend the rows",
            id="reporting.W005",
        )
    ]


def _out_of_range_warnings(cursor: Any, src: Source) -> list[checks.CheckMessage]:
    """History rows whose time no Python program can hold ('infinity', BC, year 10000): left out, and said."""
    cursor.execute(
        sql.SQL("SELECT count(*) FROM {} WHERE NOT {} BETWEEN %s AND %s")
        .format(src.history.identifier(), sql.Identifier(src.created))
        .as_string(cursor.connection),
        [EARLIEST, LATEST],
    )
    found = cursor.fetchone()[0]
    if not found:
        return []
    return [
        checks.Warning(
            f"{src.history} holds {found:,} rows whose {src.created} is not between {EARLIEST[:10]} and "
            f"{LATEST[:10]} (such as 'infinity' or a BC date): they are left out of every report, as no "
            "change of status",
            hint=f"mend their {src.created}, or delete them",
            id="reporting.W006",
        )
    ]


def _key_type_errors(cursor: Any, src: Source) -> list[checks.CheckMessage]:
    """The history's keys and the parent's must be kept as one type (both integers, or both uuids)."""
    types = []
    for table, column in ((src.history, src.key), (src.parent, src.parent_key)):
        cursor.execute(COLUMN_TYPE_SQL, [table.identifier().as_string(cursor.connection), column])
        row = cursor.fetchone()
        if row is None:
            return []  # a table migrate has yet to make
        types.append(row[0])
    if stored_key_type(types[0]) == stored_key_type(types[1]):
        return []
    return [
        _error(
            f"REPORTING_SOURCE['key'] {src.history}.{src.key} is {types[0]}, but "
            f"REPORTING_SOURCE['parent_key'] {src.parent}.{src.parent_key} is {types[1]}: "
            "a key and its parent's key must be of one kind (integers, or uuid)"
        )
    ]


def source_errors(using: str, *, made: bool = False) -> list[checks.CheckMessage]:
    """What is wrong with the declared source on database ``using``.

    Args:
        using: the database alias.
        made: every declared table must exist now (``migrate`` has ended).
    """
    try:
        src = source()
    except DeclarationError:
        return []  # source_check reports it
    if made:
        # A missing table is an error now, whether a model declared it or not.
        src = dataclasses.replace(
            src,
            history=dataclasses.replace(src.history, model=None),
            parent=dataclasses.replace(src.parent, model=None),
        )
    try:
        with connections[using].cursor() as cursor:
            errors = _history_errors(cursor, src) + _parent_errors(cursor, src)
            errors += _key_type_errors(cursor, src)
            if not any(e.is_serious() for e in errors):
                errors += _foreign_key_warnings(cursor, src)
            if not any(e.is_serious() for e in errors) and not made:
                errors += _installed_errors(cursor, src)
                errors += _undeclared_warnings(cursor, src)
                errors += _out_of_range_warnings(cursor, src)
            return errors
    except DatabaseError as exc:
        return [_error(f"cannot check REPORTING_SOURCE on database {using!r}: {exc}".strip())]


def _pending_migrations(using: str) -> bool:
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connections[using])
    return bool(executor.migration_plan(executor.loader.graph.leaf_nodes()))


@checks.register(checks.Tags.database)
def source_database_check(databases: Iterable[str] | None = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """The declared tables and columns exist, have usable types, and an index serves the latest row.

    While migrations are unapplied it says nothing: they may be what makes the
    tables, columns or index, and ``migrate`` checks again when it ends, before it
    installs anything (``reporting.apps``).
    """
    return [
        error for alias in databases or () if not _pending_migrations(alias) for error in source_errors(alias)
    ]
