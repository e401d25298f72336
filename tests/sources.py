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
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import connection

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
