"""Declared sources of other shapes than the example shop's, and one check of every read against them.

A :class:`Shape` is a history a test declares as ``REPORTING_SOURCE``: its tables,
its declaration, how to write to it and how to read it back raw. :func:`assert_exact`
compares every strategy's counts, lists (streamed, walked page by page, ids),
the SQL views BI tools read, and optionally the HTTP API and the CSV export, with
the brute force over the raw rows. Shared by the tests of each shape.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import connection
from hypothesis import strategies as st

from reporting import selectors, services
from reporting.choices import RefreshOutcome
from reporting.declaration import statuses
from tests.brute_force import (
    StatusRow,
    brute_force_found,
    brute_force_latest,
    brute_force_lists,
    brute_force_since,
    brute_force_transitions,
)
from tests.helpers import declared

STRATEGIES = ("live", "snapshot", "realtime")


@dataclass(frozen=True)
class Shape:
    """A history of another shape, declared as the source by a test."""

    name: str
    declaration: dict[str, Any]
    #: Makes the tables (none for a model's tables, which migrate made).
    ddl: str
    #: Drops them, or empties a model's.
    drop: str
    #: ``(id, key, created, status as text)`` of every history row.
    rows_sql: str
    #: The parent's keys.
    keys_sql: str
    #: Adds a parent key: parameters ``(key, created)``.
    insert_key_sql: str
    #: Adds a history row: parameters ``(key, created, status)``.
    insert_row_sql: str
    #: Empties both tables.
    reset_sql: str
    #: The key of the i-th key this shape writes.
    key: Callable[[int], Any]
    #: Status values its writers use, as stored: declared ones and others.
    values: Sequence[Any] = field(default_factory=tuple)


def raw_rows(shape: Shape) -> list[StatusRow]:
    with connection.cursor() as cursor:
        cursor.execute(shape.rows_sql)
        return [StatusRow(*row) for row in cursor.fetchall()]


def parent_keys(shape: Shape) -> set[Any]:
    with connection.cursor() as cursor:
        cursor.execute(shape.keys_sql)
        return {row[0] for row in cursor.fetchall()}


@dataclass(frozen=True)
class Expected:
    """What every read must answer, by the definition, over the raw rows."""

    #: The latest row of every key that is a parent's key (rows of other keys are no key's).
    latest: dict[Any, StatusRow]
    #: When each of those keys entered its latest status.
    since: dict[Any, dt.datetime]
    #: Every declared status (zero included) in order, then the undeclared values found.
    counts: dict[str, int]
    none: int
    #: ``(key, row id, status, created, since)`` of the keys in each status of ``counts``, in list order.
    lists: dict[str, list[tuple]]

    def rows(self, status: str) -> list[tuple]:
        """``(key, row id, status, created, since)`` of the keys in ``status``, in list order."""
        return self.lists[status]


def expected(shape: Shape) -> Expected:
    keys = parent_keys(shape)
    rows = [row for row in raw_rows(shape) if row.order_id in keys]
    latest = brute_force_latest(rows)
    found = brute_force_found(rows)
    declared = statuses()
    counts = {
        **{status: found.get(status, 0) for status in declared},
        **{status: found[status] for status in sorted(set(found) - set(declared))},
    }
    return Expected(
        latest=latest,
        since=brute_force_since(rows),
        counts=counts,
        none=len(keys) - len(latest),
        lists=brute_force_lists(rows, list(counts), since=True),
    )


def walk(status: str, strategy: str, limit: int) -> list[tuple]:
    """Every page of a status, each after the previous page's cursor."""
    rows: list[tuple] = []
    after = None
    while True:
        page = selectors.order_list_by_status(status=status, strategy=strategy, after=after, limit=limit)
        rows.extend(tuple(row[:5]) for row in page.rows)
        if page.next_after is None:
            return rows
        after = page.next_after


def _sql(query: str) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(query)
        return cursor.fetchall()


def assert_exact(shape: Shape, strategies: Sequence[str], *, client: Any = None) -> None:
    """Every strategy in ``strategies``, the SQL views and (with ``client``) the API and CSV are exact."""
    want = expected(shape)
    for strategy in strategies:
        counts = selectors.order_status_counts(strategy=strategy)
        assert (counts.counts, counts.none) == (want.counts, want.none), (shape.name, strategy)
        assert counts.undeclared == {s: n for s, n in want.counts.items() if s not in statuses()}
        for status in want.counts:
            rows = want.rows(status)
            streamed = [
                tuple(r[:5]) for r in selectors.order_iter_by_status(status=status, strategy=strategy)
            ]
            assert streamed == rows, (shape.name, strategy, status)
            assert walk(status, strategy, limit=3) == rows, (shape.name, strategy, status)
            ids = selectors.order_ids_by_status(status=status, strategy=strategy)
            assert sorted(map(str, ids)) == sorted(str(r[0]) for r in rows), (shape.name, strategy, status)
    latest_sql = sorted(
        (key, row.id, row.status, row.created, want.since[key]) for key, row in want.latest.items()
    )
    counts_sql = sorted(
        [*((s, n) for s, n in want.counts.items() if n), *([(None, want.none)] if want.none else [])],
        key=repr,
    )
    views = [("order_latest_status_live", "order_status_counts_live")]
    if "snapshot" in strategies:
        views.append(("order_latest_status", "order_status_counts"))
    for latest_view, counts_view in views:
        columns = "order_id, status_id, status, status_created, status_since"
        got = sorted(_sql(f"SELECT {columns} FROM reporting.{latest_view}"))  # noqa: S608
        assert got == latest_sql, (shape.name, latest_view)
        got_counts = sorted(
            _sql(f"SELECT status, orders FROM reporting.{counts_view} WHERE orders <> 0"),  # noqa: S608
            key=repr,
        )
        assert got_counts == counts_sql, (shape.name, counts_view)
    if client is not None:
        _assert_api(shape, want, client)


def _assert_api(shape: Shape, want: Expected, client: Any) -> None:
    keys = parent_keys(shape)
    changes = brute_force_transitions([row for row in raw_rows(shape) if row.order_id in keys])
    if changes:
        first, last = min(day for day, _, _ in changes), max(day for day, _, _ in changes)
        window = {"from": first.isoformat(), "to": last.isoformat()}
        body = client.get("/api/transitions/daily", window).json()
        got = {
            (dt.date.fromisoformat(day), kind["from"], kind["to"]): n
            for kind in body["transitions"]
            for day, n in zip(body["days"], kind["per_day"], strict=True)
            if n
        }
        assert got == changes, (shape.name, body)
        for status in want.counts:
            page = client.get("/", {"status": status, **window})
            assert page.status_code == 200, (status, page.content[:500])
    undeclared = {s: n for s, n in want.counts.items() if s not in statuses()}
    for strategy in ("live", "realtime"):
        body = client.get("/api/status-counts", {"strategy": strategy}).json()
        assert body["none"] == want.none and body["total"] == sum(want.counts.values()) + want.none, body
        # Undeclared values under their own value; a history value "none" only here, as
        # "counts" keeps "none" for the keys without rows.
        assert body["undeclared"] == undeclared, body
        assert body["counts"] == {**want.counts, "none": want.none}, body
    for status in want.counts:
        rows = want.rows(status)
        walked: list[tuple] = []
        after = None
        while True:
            answer = client.get(
                "/api/orders", {"status": status, "limit": 4, **({"after": after} if after else {})}
            )
            assert answer.status_code == 200, (status, answer.content)
            body = answer.json()
            walked += [
                (str(o["order_id"]), o["status_id"], o["status"], o["status_since"]) for o in body["orders"]
            ]
            after = body["next_after"]
            if after is None:
                break
        assert walked == [(str(r[0]), r[1], r[2], r[4].isoformat()) for r in rows], (shape.name, status)
        exported = client.get("/api/orders.csv", {"status": status})
        assert exported.status_code == 200, exported
        table = list(csv.reader(io.StringIO(b"".join(exported.streaming_content).decode())))
        assert [(line[0], int(line[1])) for line in table[1:]] == [(str(r[0]), r[1]) for r in rows]
        # Any text the history holds: one that a spreadsheet would run is quoted.
        assert all(not line[2].startswith(("=", "+", "-", "@", "\t", "\r")) for line in table[1:]), table


def reset(shape: Shape) -> None:
    """Empty the shape's tables and refresh: every example of a property test starts from nothing."""
    with connection.cursor() as cursor:
        cursor.execute(shape.reset_sql)
    assert services.views_refresh(force=True).outcome == RefreshOutcome.OK


@contextlib.contextmanager
def shape_declared(shape: Shape, settings: Any) -> Iterator[None]:
    """The shape's tables made and declared as the source; the example's declaration again after."""
    if shape.ddl:
        with connection.cursor() as cursor:
            cursor.execute(shape.ddl)
    try:
        with declared(settings, shape.declaration):
            assert services.views_refresh(force=True).outcome == RefreshOutcome.OK
            yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(shape.drop)


# --- The declared sources of other shapes ------------------------------------------------------------
# A support desk with UUID keys and no foreign key, the desk example's integer states, a
# storefront's event log in a schema of its own (tests/test_shapes.py says more of each).

T0 = dt.datetime(2026, 9, 1, tzinfo=dt.UTC)

TICKETS = Shape(
    name="tickets",
    declaration={
        "history": "public.support_ticket_event",
        "key": "ticket_id",
        "latest_by": ["-at", "-id"],
        "status": "state",
        "statuses": ["new", "open", "closed"],
        "parent": "public.support_ticket",
        "parent_created": "opened",
    },
    ddl="""
        CREATE TABLE support_ticket (id uuid PRIMARY KEY, opened timestamptz NOT NULL);
        CREATE TABLE support_ticket_event (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            ticket_id uuid NOT NULL,  -- imported: no foreign key to support_ticket
            at timestamptz NOT NULL,
            state text NOT NULL
        );
        CREATE INDEX support_ticket_event_latest ON support_ticket_event (ticket_id, at DESC, id DESC);
    """,
    drop="DROP TABLE support_ticket_event, support_ticket",
    rows_sql="SELECT id, ticket_id, at, state FROM support_ticket_event",
    keys_sql="SELECT id FROM support_ticket",
    insert_key_sql="INSERT INTO support_ticket (id, opened) VALUES (%s, %s) ON CONFLICT DO NOTHING",
    insert_row_sql="INSERT INTO support_ticket_event (ticket_id, at, state) VALUES (%s, %s, %s)",
    reset_sql="TRUNCATE support_ticket_event, support_ticket",
    key=lambda i: uuid.UUID(int=i + 1),
    # Undeclared: a state added in code, the reserved word, nothing, and text a spreadsheet would run.
    values=("new", "open", "closed", "escalated", "none", "", "=1+2", "@SUM(A1)", "\t=1", "\r=1", "-cmd"),
)
DESK = Shape(
    name="desk",
    # No "statuses": the field's choices give them, and their labels.
    declaration={
        "history": "desk.TicketEvent",
        "key": "ticket_id",
        "latest_by": ["-at", "-id"],
        "status": "state",
        "parent": "desk.Ticket",
        "parent_created": "opened",
    },
    ddl="",
    drop="TRUNCATE desk_ticketevent, desk_ticket",
    rows_sql="SELECT id, ticket_id, at, state::text FROM desk_ticketevent",
    keys_sql="SELECT id FROM desk_ticket",
    insert_key_sql="INSERT INTO desk_ticket (id, opened) VALUES (%s, %s) ON CONFLICT DO NOTHING",
    insert_row_sql="INSERT INTO desk_ticketevent (ticket_id, at, state) VALUES (%s, %s, %s)",
    reset_sql="TRUNCATE desk_ticketevent, desk_ticket",
    key=lambda i: i + 1,
    values=(1, 2, 3, 4, 7, 0),
)
STOREFRONT = Shape(
    name="storefront",
    declaration={
        "history": "shopfront.order_orderevent",
        "key": "order_id",
        "latest_by": ["-date", "-id"],
        "status": "type",
        "statuses": ["placed", "confirmed", "fulfilled", "canceled"],
        "parent": "shopfront.order_order",
        "parent_created": "created_at",
    },
    ddl="""
        CREATE SCHEMA shopfront;
        CREATE TABLE shopfront.order_order (id uuid PRIMARY KEY, created_at timestamptz NOT NULL);
        CREATE TABLE shopfront.order_orderevent (
            id serial PRIMARY KEY,
            date timestamptz NOT NULL,
            type varchar(255) NOT NULL,
            order_id uuid NOT NULL REFERENCES shopfront.order_order (id) DEFERRABLE INITIALLY DEFERRED
        );
        CREATE INDEX order_orderevent_latest ON shopfront.order_orderevent (order_id, date DESC, id DESC);
    """,
    drop="DROP SCHEMA shopfront CASCADE",
    rows_sql="SELECT id, order_id, date, type FROM shopfront.order_orderevent",
    keys_sql="SELECT id FROM shopfront.order_order",
    insert_key_sql=(
        "INSERT INTO shopfront.order_order (id, created_at) VALUES (%s, %s) ON CONFLICT DO NOTHING"
    ),
    insert_row_sql="INSERT INTO shopfront.order_orderevent (order_id, date, type) VALUES (%s, %s, %s)",
    reset_sql="TRUNCATE shopfront.order_orderevent, shopfront.order_order",
    key=lambda i: uuid.UUID(int=(i + 1) << 64),
    values=("placed", "confirmed", "fulfilled", "canceled", "note_added", "email_sent", "payment_captured"),
)
SHAPES = {shape.name: shape for shape in (TICKETS, DESK, STOREFRONT)}
# Keys 0 to 5 get a parent row when written; 6 and 7 only where no foreign key asks for one.
KEYS = 8
PARENTED = 6


def shape_ops(shape: Shape):
    """Random operations on a shape for :func:`shape_apply`: keys, rows (ties, backfills, declared
    values and others), deletes, folds and refreshes."""
    return st.lists(
        st.one_of(
            st.tuples(st.just("key"), st.integers(0, PARENTED - 1)),
            st.tuples(
                st.just("row"),
                st.integers(0, KEYS - 1),
                # Ties on the timestamp, and rows older than the key's latest (backfills).
                st.sampled_from([0, 0, 1, 5, 60]),
                st.integers(0, len(shape.values) - 1),
            ),
            st.tuples(st.just("delete"), st.integers(0, 40)),
            st.just(("fold",)),
            st.just(("refresh",)),
        ),
        max_size=16,
    )


def shape_apply(shape: Shape, op: tuple, *, has_foreign_key: bool) -> None:
    """One operation of :func:`shape_ops` on ``shape``'s tables; with ``has_foreign_key``, no row
    of a key without a parent."""
    with connection.cursor() as cursor:
        if op[0] == "key":
            cursor.execute(shape.insert_key_sql, [shape.key(op[1]), T0 + dt.timedelta(hours=op[1])])
        elif op[0] == "row":
            _, index, minutes, value = op
            if index >= PARENTED and has_foreign_key:
                return
            if index < PARENTED:
                cursor.execute(shape.insert_key_sql, [shape.key(index), T0 + dt.timedelta(hours=index)])
            cursor.execute(
                shape.insert_row_sql,
                [shape.key(index), T0 + dt.timedelta(minutes=minutes), shape.values[value]],
            )
        elif op[0] == "delete":
            table = shape.rows_sql.rpartition(" FROM ")[2]
            cursor.execute(
                f"DELETE FROM {table} WHERE id = (SELECT id FROM {table} ORDER BY id OFFSET %s LIMIT 1)",  # noqa: S608
                [op[1]],
            )
        elif op[0] == "fold":
            services.overlay_fold()
        else:
            assert services.views_refresh().outcome in {RefreshOutcome.OK, RefreshOutcome.UNCHANGED}
