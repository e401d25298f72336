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
        "noun": "order",                      # optional: what pages call one key (else the
        "noun_plural": "orders",              #   parent model's verbose_name(_plural))
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
    "noun",
    "noun_plural",
    "source",
    "status_label",
    "status_parse",
    "statuses",
]

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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
        "labels",
        "noun",
        "noun_plural",
    }
)
# What a key is called when neither the declaration nor the parent's name says.
NEUTRAL_NOUN = ("key", "keys")
MAX_NOUN = 60


class DeclarationError(ValueError):
    """``REPORTING_SOURCE`` is malformed: every problem found, each naming its entry and the fix.

    Attributes:
        entry: the entry of the first problem.
        problems: every problem, as ``(entry, what is wrong, how to fix it)``.
    """

    def __init__(self, entry: str, problem: str, fix: str = "") -> None:
        self.problems: list[tuple[str, str, str]] = [(entry, problem, fix)]
        self.entry = entry
        super().__init__(self._message())

    @classmethod
    def of(cls, problems: list[tuple[str, str, str]]) -> DeclarationError:
        """One error that carries every problem in ``problems`` (not empty)."""
        error = cls(*problems[0])
        error.problems = list(problems)
        error.args = (error._message(),)
        return error

    @staticmethod
    def line(entry: str, problem: str) -> str:
        return f"REPORTING_SOURCE[{entry!r}] {problem}"

    def _message(self) -> str:
        return "; ".join(self.line(entry, problem) for entry, problem, _ in self.problems)


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
    #: ``(status, label)``: the words people read for a status value (from the
    #: declaration's ``labels``, or the status field's choices).
    labels: tuple[tuple[str, str], ...] = ()
    #: What pages call one key and several (``noun``/``noun_plural``); ``None``: from ``parent``.
    noun: str | None = None
    noun_plural: str | None = None


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


def _noun(entry: str, value: object) -> str | None:
    """The ``noun`` or ``noun_plural`` entry: words people read, one line of printable text."""
    if value is None:
        return None
    if (
        not isinstance(value, str)
        or not value.strip()
        or len(value) > MAX_NOUN
        or not value.isprintable()
        or value != value.strip()
    ):
        raise DeclarationError(
            entry,
            f"must be a word or two such as 'ticket' (1 to {MAX_NOUN} printable characters), not {value!r}",
        )
    return value


# How to mend each entry, for a reader who has only this message (a pip install
# has no docs folder): what the entry is and an example.
FIXES = {
    "": "REPORTING_SOURCE is a dict in your settings that says where the status history lives, e.g. "
    "{'history': 'shop.OrderStatus', 'key': 'order_id', 'latest_by': ['-created', '-id'], "
    "'status': 'status', 'statuses': ['pending', 'paid'], 'parent': 'shop.Order', "
    "'parent_created': 'created'}",
    "history": "name the table of history rows (one row per change of status): a model label such as "
    "'shop.OrderStatus', or a table such as 'public.order_history'",
    "key": "name the history's column that says whose row it is (its foreign key to the parent, "
    "e.g. 'order_id'): an integer or uuid column",
    "latest_by": "give two descending columns, a timestamp then the table's unique id that breaks its "
    "ties, e.g. ['-created', '-id']",
    "status": "name the history's column that holds the status (text, or an integer with choices)",
    "statuses": "list the status values in the order reports show them, the first where a key starts, "
    "e.g. ['pending', 'paid', 'cancelled'] (or [1, 2, 3] for an integer column); leave the entry out "
    "to take them from the status field's choices",
    "labels": "map status values to the words people read, e.g. {1: 'New', 2: 'Open'}; a model's "
    "status field with choices gives them without this entry",
    "parent": "name the table of keys, the model the history's key points to (e.g. 'shop.Order'): "
    "counts report its keys without any history row as 'none', and only its keys are counted",
    "parent_key": "name the parent's unique key column (default 'id')",
    "parent_created": "name the parent's creation-time column (a timestamp with time zone, e.g. "
    "'created'): daily reports count each key on the day it was created",
    "columns": "list more history columns each latest row shows, e.g. ['amount', 'note'], or leave "
    "the entry out",
    "noun": "say what people call one key, e.g. 'ticket' (else the parent model's verbose_name)",
    "noun_plural": "say what people call several keys, e.g. 'tickets'",
}


def _status_value(value: object, entry: str = "statuses") -> str:
    """A declared status as the reports hold it: text, an integer as its digits."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str) and value and len(value) <= MAX_STATUS_LENGTH:
        return value
    raise DeclarationError(
        entry,
        f"must hold non-empty strings of at most {MAX_STATUS_LENGTH} characters or integers, not {value!r}",
    )


def _statuses(value: object) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not value or len(value) > MAX_STATUSES:
        raise DeclarationError(
            "statuses", f"must be a list of 1 to {MAX_STATUSES} status values, not {value!r}"
        )
    statuses = tuple(_status_value(v) for v in value)
    if len({isinstance(v, int) for v in value}) > 1:
        raise DeclarationError(
            "statuses",
            f"must be all strings (a text column) or all integers (an integer column), not {value!r}",
        )
    for status in statuses:
        if status in RESERVED_STATUSES:
            raise DeclarationError(
                "statuses", f"cannot hold {status!r}: counts use it for keys without any row"
            )
    if len(set(statuses)) != len(statuses):
        raise DeclarationError("statuses", f"holds a value twice: {list(value)!r}")
    return statuses


def _labels(value: object) -> dict[str, str]:
    if not isinstance(value, dict) or len(value) > MAX_STATUSES:
        raise DeclarationError(
            "labels", f"must be a dict of at most {MAX_STATUSES} status: label, not {value!r}"
        )
    labels = {}
    for status, label in value.items():
        if not isinstance(label, str) or not label.strip() or len(label) > MAX_STATUS_LENGTH:
            raise DeclarationError(
                "labels",
                f"must map each status to a label of 1 to {MAX_STATUS_LENGTH} characters, not {label!r}",
            )
        labels[_status_value(status, "labels")] = label
    return labels


def _choices(table: Table, column: str) -> list[tuple[str, str]]:
    """The choices of the model field stored in ``column``: ``(value as text, label)``; none for a table."""
    if table.model is None:
        return []
    from django.apps import apps

    model = apps.get_model(table.model)
    for field in model._meta.concrete_fields:
        if field.column == column and field.flatchoices:
            return [(_status_value(v), str(label)) for v, label in field.flatchoices if v not in (None, "")]
    return []


def parse(declared: object) -> Source:
    """Read a declaration (a ``REPORTING_SOURCE`` value).

    Raises:
        DeclarationError: with every problem found, each with its entry and fix.
    """
    if not isinstance(declared, dict):
        raise DeclarationError("", f"must be a dict, not {type(declared).__name__}", FIXES[""])
    problems: list[tuple[str, str, str]] = []
    parsed: dict[str, Any] = {}

    def entry(name: str, read: Callable[[], Any]) -> None:
        try:
            parsed[name] = read()
        except DeclarationError as exc:
            problems.extend((e, p, f or FIXES.get(e, "")) for e, p, f in exc.problems)

    for unknown in sorted(str(k) for k in set(declared) - KEYS):
        problems.append(
            (unknown, f"is not an entry of a declaration; the entries are {', '.join(sorted(KEYS))}", "")
        )
    # The entries every declaration needs: the counts of keys without rows and
    # the daily reports need the table of keys too.
    for required in ("history", "key", "latest_by", "status", "parent", "parent_created"):
        if declared.get(required) is None:
            problems.append((required, "is missing", FIXES[required]))

    def latest_by() -> tuple[str, str]:
        value = declared["latest_by"]
        if (
            not isinstance(value, list | tuple)
            or len(value) != 2
            or not all(isinstance(c, str) and c.startswith("-") for c in value)
        ):
            raise DeclarationError(
                "latest_by",
                "must be two descending columns, a timestamp then a unique integer, such as "
                f"['-created', '-id'] (the greatest pair is the latest row), not {value!r}",
            )
        return _column("latest_by", value[0][1:]), _column("latest_by", value[1][1:])

    for name, read in (
        ("history", lambda: _table("history", declared["history"])),
        ("key", lambda: _column("key", declared["key"])),
        ("latest_by", latest_by),
        ("status", lambda: _column("status", declared["status"])),
        ("parent", lambda: _table("parent", declared["parent"])),
        ("parent_created", lambda: _column("parent_created", declared["parent_created"])),
    ):
        if declared.get(name) is not None:
            entry(name, read)
    entry("parent_key", lambda: _column("parent_key", declared.get("parent_key", "id")))
    entry("columns", lambda: _exposed(declared.get("columns", [])))
    if "statuses" in declared:
        entry("statuses", lambda: _statuses(declared["statuses"]))
    entry("labels", lambda: _labels(declared.get("labels", {})))
    entry("noun", lambda: _noun("noun", declared.get("noun")))
    entry("noun_plural", lambda: _noun("noun_plural", declared.get("noun_plural")))
    choices = (
        _choices(parsed["history"], parsed["status"]) if "history" in parsed and "status" in parsed else []
    )
    if "statuses" not in declared:
        if choices:
            entry("statuses", lambda: _statuses([value for value, _ in choices]))
        elif "history" in parsed and "status" in parsed:
            problems.append(
                (
                    "statuses",
                    "is missing, and the status field has no choices to take them from",
                    FIXES["statuses"],
                )
            )
    if problems:
        raise DeclarationError.of(problems)
    labels = {**dict(choices), **parsed["labels"]}
    return Source(
        history=parsed["history"],
        key=parsed["key"],
        created=parsed["latest_by"][0],
        row_id=parsed["latest_by"][1],
        status=parsed["status"],
        statuses=parsed["statuses"],
        parent=parsed["parent"],
        parent_key=parsed["parent_key"],
        parent_created=parsed["parent_created"],
        columns=parsed["columns"],
        noun=parsed["noun"],
        noun_plural=parsed["noun_plural"],
        labels=tuple((value, labels[value]) for value in parsed["statuses"] if value in labels)
        + tuple(sorted((v, label) for v, label in labels.items() if v not in parsed["statuses"])),
    )


def source() -> Source:
    """The declared source (``REPORTING_SOURCE``).

    Raises:
        DeclarationError: the setting is missing or malformed.
    """
    declared = getattr(settings, "REPORTING_SOURCE", None)
    if declared is None:
        raise DeclarationError("", "is not set: declare where the history lives", FIXES[""])
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
    return dict(source().labels).get(value, value)


def _mid_sentence(words: str) -> str:
    """``words`` as they read inside a sentence: "Order" becomes "order", "SKU" stays."""
    if words[:1].isupper() and not words[1:2].isupper():
        return words[0].lower() + words[1:]
    return words


def _from_table(name: str) -> tuple[str, str]:
    """A noun and its plural from a table's name: ``support_ticket`` gives "support ticket(s)"."""
    words = " ".join(part for part in name.replace("-", "_").split("_") if part).lower()
    if not words or not words.replace(" ", "").isalpha():
        return NEUTRAL_NOUN
    if words.endswith("s") and not words.endswith("ss"):  # "tickets": already plural
        return words[:-1], words
    return words, words + ("es" if words.endswith(("s", "x", "z", "ch", "sh")) else "s")


def _nouns() -> tuple[str, str]:
    declared = source()
    singular, plural = None, None
    if declared.parent.model is not None:
        from django.apps import apps

        meta = apps.get_model(declared.parent.model)._meta
        singular, plural = str(meta.verbose_name), str(meta.verbose_name_plural)
    else:
        singular, plural = _from_table(declared.parent.name)
    if declared.noun is not None:
        singular = declared.noun
        # A declared noun without its plural: Django's own rule for verbose_name_plural.
        plural = declared.noun_plural or f"{declared.noun}s"
    elif declared.noun_plural is not None:
        plural = declared.noun_plural
    return _mid_sentence(singular), _mid_sentence(plural)


def noun() -> str:
    """What people call one key, inside a sentence ("order", "ticket").

    ``REPORTING_SOURCE["noun"]``, else the parent model's ``verbose_name``, else
    words from the parent table's name, else "key". Capitalise it where a
    sentence starts.
    """
    return _nouns()[0]


def noun_plural() -> str:
    """What people call several keys, inside a sentence ("orders", "tickets"); see :func:`noun`."""
    return _nouns()[1]
