"""Where the history lives: the one declaration the reporting machinery is built from.

A project declares, in the setting ``REPORTING_SOURCE``, the table that holds
an append-only history of rows per key, which row is the latest, and where the
keys themselves live::

    REPORTING_SOURCE = {
        "history": "shop.OrderStatus",        # a model label, or a table: "public.order_history"
        "key": "order_id",                    # the column the latest row is kept per
        "latest_by": ["-created", "-id"],     # greatest (timestamp, unique id) is the latest
        "status": "status",                   # the column counted and listed by value
        "statuses": ["pending", "complete", "cancelled"],
        "parent": "shop.Order",               # the table of keys: counts its keys without rows
        "parent_key": "id",
        "parent_created": "created",          # the day a key counts in for daily reports
        "columns": [],                        # optional: more columns a latest row shows
    }

Columns are database column names (a model's ``db_column``, or the field name
with ``_id`` for a foreign key). This module only reads and checks the shape of
the setting; :mod:`reporting.checks` checks it against the database, at
``manage.py check --database default`` and before every ``migrate``. See
"Declaring your history" in ``docs/architecture.md``.
"""

from __future__ import annotations

__all__ = [
    "DeclarationError",
    "Source",
    "Table",
    "default_status",
    "is_declared",
    "source",
    "status_label",
    "status_parse",
    "statuses",
]

import re
from dataclasses import dataclass

from django.conf import settings
from psycopg import sql

from reporting.exceptions import InvalidStatusError

# Names the reporting machinery reserves in a status column: counts report the
# keys without any row as "none".
RESERVED_STATUSES = frozenset({"none"})
# PostgreSQL truncates longer identifiers, so two long names could become one.
MAX_IDENTIFIER = 63
MAX_STATUSES = 100
MAX_COLUMNS = 32
# The names every latest row already has, in the views, the API and the CSV.
ROW_NAMES = frozenset({"order_id", "status_id", "status", "status_created", "status_since"})
# A sanity bound on a declared value; the reporting state stores statuses as text.
MAX_STATUS_LENGTH = 200
LABEL_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*")
KEYS = frozenset(
    {
        "history",
        "key",
        "latest_by",
        "status",
        "statuses",
        "parent",
        "parent_key",
        "parent_created",
        "columns",
    }
)


class DeclarationError(ValueError):
    """``REPORTING_SOURCE`` is malformed; the message names the entry and what it must be."""

    def __init__(self, entry: str, problem: str) -> None:
        self.entry = entry
        super().__init__(f"REPORTING_SOURCE[{entry!r}] {problem}")


@dataclass(frozen=True)
class Table:
    """A table (or view) by schema and name, as the catalog spells them."""

    schema: str
    name: str
    #: The model it was declared by (``app.Model``), or ``None`` for a table named directly.
    model: str | None = None

    def __str__(self) -> str:
        return f"{self.schema}.{self.name}"

    def identifier(self) -> sql.Identifier:
        """The table as a quoted SQL identifier, ``"schema"."name"``."""
        return sql.Identifier(self.schema, self.name)


@dataclass(frozen=True)
class Source:
    """The declared history: its table and columns, and the table of its keys.

    Attributes:
        history: the table of history rows.
        key: the column a latest row is kept per (an integer).
        created: the timestamp that orders the rows; the greatest is the latest.
        row_id: the unique integer that breaks ties of ``created`` (the higher wins).
        status: the column counted and listed by value.
        statuses: the values ``status`` may hold, in the order reports show them.
        parent: the table of keys (counts report the keys that have no row as ``none``).
        parent_key: its key column.
        parent_created: its creation time: the day a key counts in for daily reports.
        columns: more columns of the history that a latest row shows (the API, the
            CSV export, the BI views ``order_latest_row`` and ``order_latest_row_live``),
            read from that row when it is shown.
    """

    history: Table
    key: str
    created: str
    row_id: str
    status: str
    statuses: tuple[str, ...]
    parent: Table
    parent_key: str
    parent_created: str
    columns: tuple[str, ...] = ()


def _column(entry: str, value: object) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_IDENTIFIER or "\x00" in value:
        raise DeclarationError(entry, f"must name a column (1 to {MAX_IDENTIFIER} characters), not {value!r}")
    return value


def _table(entry: str, value: object) -> Table:
    """A model label (``app.Model``) or a table name (``schema.table`` or ``table``, in ``public``)."""
    if not isinstance(value, str) or not value:
        raise DeclarationError(
            entry, f"must be a model label such as 'shop.OrderStatus' or a table, not {value!r}"
        )
    if LABEL_RE.fullmatch(value) and value.partition(".")[2][:1].isupper():
        from django.apps import apps

        app_label, _, model_name = value.partition(".")
        if app_label in {app.label for app in apps.get_app_configs()}:
            try:
                model = apps.get_model(app_label, model_name)
            except LookupError:
                raise DeclarationError(
                    entry, f"names model {value!r}, which app {app_label!r} does not have"
                ) from None
            schema, _, name = model._meta.db_table.rpartition(".")
            return Table(schema.strip('"') or "public", name.strip('"'), model=value)
        # No app by that label: a table in a schema, such as "public.Readings".
    schema, _, name = value.rpartition(".")
    for part in (schema or "public", name):
        if not part or len(part) > MAX_IDENTIFIER or "\x00" in part:
            raise DeclarationError(
                entry, f"must be a model label or a table such as 'public.history', not {value!r}"
            )
    return Table(schema or "public", name)


def _exposed(value: object) -> tuple[str, ...]:
    """The ``columns`` entry: history columns a latest row shows, besides its key, row, status and time."""
    if not isinstance(value, list | tuple) or len(value) > MAX_COLUMNS:
        raise DeclarationError("columns", f"must be a list of at most {MAX_COLUMNS} columns, not {value!r}")
    columns = tuple(_column("columns", column) for column in value)
    if len(set(columns)) != len(columns):
        raise DeclarationError("columns", f"names a column twice: {list(columns)!r}")
    clash = sorted(ROW_NAMES.intersection(columns))
    if clash:
        raise DeclarationError(
            "columns",
            f"cannot show a column named {clash[0]!r}: every latest row has {', '.join(sorted(ROW_NAMES))} "
            "already (the key, the row's id, status and time)",
        )
    return columns


def parse(declared: object) -> Source:
    """Read a declaration (a ``REPORTING_SOURCE`` value); ``DeclarationError`` names its first fault."""
    if not isinstance(declared, dict):
        raise DeclarationError("", f"must be a dict, not {type(declared).__name__}")
    unknown = sorted(str(k) for k in set(declared) - KEYS)
    if unknown:
        raise DeclarationError(
            unknown[0], f"is not an entry of a declaration; the entries are {', '.join(sorted(KEYS))}"
        )
    for required in ("history", "key", "latest_by", "status", "statuses"):
        if required not in declared:
            raise DeclarationError(required, "is missing")
    latest_by = declared["latest_by"]
    if (
        not isinstance(latest_by, list | tuple)
        or len(latest_by) != 2
        or not all(isinstance(c, str) and c.startswith("-") for c in latest_by)
    ):
        raise DeclarationError(
            "latest_by",
            "must be two descending columns, a timestamp then a unique integer, such as "
            f"['-created', '-id'] (the greatest pair is the latest row), not {latest_by!r}",
        )
    statuses = declared["statuses"]
    if not isinstance(statuses, list | tuple) or not statuses or len(statuses) > MAX_STATUSES:
        raise DeclarationError(
            "statuses", f"must be a list of 1 to {MAX_STATUSES} status values, not {statuses!r}"
        )
    for value in statuses:
        if not isinstance(value, str) or not value or len(value) > MAX_STATUS_LENGTH:
            raise DeclarationError(
                "statuses",
                f"must hold non-empty strings of at most {MAX_STATUS_LENGTH} characters, not {value!r}",
            )
        if value in RESERVED_STATUSES:
            raise DeclarationError(
                "statuses", f"cannot hold {value!r}: counts use it for keys without any row"
            )
    if len(set(statuses)) != len(statuses):
        raise DeclarationError("statuses", f"holds a value twice: {statuses!r}")
    # The counts of keys without rows and the daily reports need the table of keys.
    for required in ("parent", "parent_created"):
        if not declared.get(required):
            raise DeclarationError(required, "is missing")
    return Source(
        history=_table("history", declared["history"]),
        key=_column("key", declared["key"]),
        created=_column("latest_by", latest_by[0][1:]),
        row_id=_column("latest_by", latest_by[1][1:]),
        status=_column("status", declared["status"]),
        statuses=tuple(statuses),
        parent=_table("parent", declared["parent"]),
        parent_key=_column("parent_key", declared.get("parent_key", "id")),
        parent_created=_column("parent_created", declared["parent_created"]),
        columns=_exposed(declared.get("columns", [])),
    )


def source() -> Source:
    """The declared source (``REPORTING_SOURCE``).

    Raises:
        DeclarationError: the setting is missing or malformed.
    """
    declared = getattr(settings, "REPORTING_SOURCE", None)
    if declared is None:
        raise DeclarationError("", "is not set: declare where the history lives (docs/architecture.md)")
    return parse(declared)


def statuses() -> tuple[str, ...]:
    """The declared status values, in the order reports show them."""
    return source().statuses


def status_parse(value: object) -> str:
    """Return ``value`` if it is a declared status.

    Raises:
        InvalidStatusError: it is not, with the declared values.
    """
    declared = statuses()
    if not isinstance(value, str) or value not in declared:
        raise InvalidStatusError(value, declared)
    return value


def default_status() -> str:
    """The status the dashboard lists when none is asked for: the last declared one."""
    return statuses()[-1]


def is_declared(value: object) -> bool:
    """Whether ``value`` is one of the declared statuses (a history may hold others)."""
    return isinstance(value, str) and value in statuses()


def status_label(value: str) -> str:
    """How people read a status value: its label where the declaration has one, else the value."""
    return value
