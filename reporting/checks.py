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
from collections.abc import Iterable
from typing import Any

from django.core import checks
from django.db import connections
from django.db.utils import Error as DatabaseError
from psycopg import sql

from reporting.declaration import DeclarationError, Source, Table, source

INTEGERS = frozenset({"smallint", "integer", "bigint"})
TIMESTAMPS = frozenset({"timestamp with time zone"})
TEXTS = frozenset({"text", "character varying", "character"})

TABLE_SQL = """
SELECT c.oid, c.relkind FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE n.nspname = %s AND c.relname = %s
"""
COLUMNS_SQL = """
SELECT attname, attnum, format_type(atttypid, NULL) FROM pg_attribute
WHERE attrelid = %s AND attnum > 0 AND NOT attisdropped
"""
# A valid, total (no predicate) unique index on exactly one column.
UNIQUE_SQL = """
SELECT 1 FROM pg_index AS i
WHERE i.indrelid = %s AND i.indisunique AND i.indisvalid AND i.indpred IS NULL
  AND i.indnkeyatts = 1 AND i.indkey[0] = %s
"""
# A valid, total B-tree index whose first columns are (key, created, row id), with
# created and row id sorted against the key's direction: the order that
# DISTINCT ON (key) ... ORDER BY key, created DESC, row id DESC reads in, and the
# one that finds a key's latest row in one index probe.
ORDERING_INDEX_SQL = """
SELECT 1 FROM pg_index AS i
JOIN pg_class AS ic ON ic.oid = i.indexrelid
JOIN pg_am AS am ON am.oid = ic.relam
WHERE i.indrelid = %(table)s AND am.amname = 'btree' AND i.indisvalid AND i.indpred IS NULL
  AND i.indnkeyatts >= 3
  AND i.indkey[0] = %(key)s AND i.indkey[1] = %(created)s AND i.indkey[2] = %(row_id)s
  AND (i.indoption[0] & 1) <> (i.indoption[1] & 1)
  AND (i.indoption[1] & 1) = (i.indoption[2] & 1)
"""


def _error(message: str, hint: str | None = None, id: str = "reporting.E002") -> checks.Error:
    return checks.Error(message, hint=hint, id=id)


@checks.register()
def source_check(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """``REPORTING_SOURCE`` is well-formed."""
    try:
        source()
    except DeclarationError as exc:
        return [_error(str(exc), "see 'Declaring your history' in docs/architecture.md", id="reporting.E001")]
    return []


def _quoted(table: Table, cursor: Any) -> str:
    return sql.Identifier(table.schema, table.name).as_string(cursor.connection)


def _table(
    cursor: Any, table: Table, entry: str, kinds: str
) -> tuple[int, dict[str, tuple[int, str]]] | str | None:
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
        return f"REPORTING_SOURCE[{entry!r}] names {table}, which is not a table (relkind {kind!r})"
    cursor.execute(COLUMNS_SQL, [oid])
    return oid, {name: (number, type_) for name, number, type_ in cursor.fetchall()}


def _columns(
    table: Table, columns: dict[str, tuple[int, str]], wanted: Iterable[tuple[str, str, frozenset[str]]]
) -> list[checks.CheckMessage]:
    errors: list[checks.CheckMessage] = []
    for entry, column, types in wanted:
        if column not in columns:
            errors.append(
                _error(f"REPORTING_SOURCE[{entry!r}] names column {column!r}, which {table} does not have")
            )
        elif columns[column][1] not in types:
            errors.append(
                _error(
                    f"REPORTING_SOURCE[{entry!r}] names column {table}.{column}, of type "
                    f"{columns[column][1]}; it must be {' or '.join(sorted(types))}"
                )
            )
    return errors


def _history_errors(cursor: Any, src: Source) -> list[checks.CheckMessage]:
    found = _table(cursor, src.history, "history", "rp")
    if found is None:
        return []
    if isinstance(found, str):
        return [_error(found, "a history is a table (triggers log its changes), with one row per change")]
    oid, columns = found
    errors = _columns(
        src.history,
        columns,
        [
            ("key", src.key, INTEGERS),
            ("latest_by", src.created, TIMESTAMPS),
            ("latest_by", src.row_id, INTEGERS),
            ("status", src.status, TEXTS),
        ],
    )
    if errors:
        return errors
    cursor.execute(UNIQUE_SQL, [oid, columns[src.row_id][0]])
    if cursor.fetchone() is None:
        errors.append(
            _error(
                f"REPORTING_SOURCE['latest_by'] breaks ties with {src.history}.{src.row_id}, which no unique "
                "index covers: two rows could tie, and the latest would be undefined",
                "use the table's primary key as the second column of latest_by",
            )
        )
    cursor.execute(
        ORDERING_INDEX_SQL,
        {
            "table": oid,
            "key": columns[src.key][0],
            "created": columns[src.created][0],
            "row_id": columns[src.row_id][0],
        },
    )
    if cursor.fetchone() is None:
        index = sql.SQL("CREATE INDEX CONCURRENTLY ON {} ({}, {} DESC, {} DESC)").format(
            sql.Identifier(src.history.schema, src.history.name),
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
    found = _table(cursor, src.parent, "parent", "rpvm")
    if found is None:
        return []
    if isinstance(found, str):
        return [_error(found)]
    _, columns = found
    wanted = [("parent_key", src.parent_key, INTEGERS), ("parent_created", src.parent_created, TIMESTAMPS)]
    return _columns(src.parent, columns, wanted)


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
            return _history_errors(cursor, src) + _parent_errors(cursor, src)
    except DatabaseError as exc:
        return [_error(f"cannot check REPORTING_SOURCE on database {using!r}: {exc}".strip())]


@checks.register(checks.Tags.database)
def source_database_check(databases: Iterable[str] | None = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """The declared tables and columns exist, have usable types, and an index serves the latest row."""
    return [error for alias in databases or () for error in source_errors(alias)]
