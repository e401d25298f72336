"""Status values the declaration never named, and when a key entered its status.

A support desk's tickets (integer keys, a ``state`` column of text without a
CHECK) whose events hold the declared states and also ``'none'``, ``''`` and a
state nobody declared. Keys without rows count under status NULL in every SQL
relation, so no value collides with them, and the selectors map NULL (only NULL)
to ``StatusCounts.none``. Every latest row carries ``status_since``, the first row
of its final run of equal statuses. Both are compared with the brute force, in
every strategy, through folds, refreshes (plain and concurrent) and a TRUNCATE.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Iterator

import pytest
from django.db import connection
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reporting import selectors, services
from reporting.choices import RefreshOutcome
from tests.brute_force import StatusRow, brute_force_by_key
from tests.helpers import declared, examples

pytestmark = pytest.mark.django_db(transaction=True)

TICKETS_DDL = """
CREATE TABLE ticket (id integer PRIMARY KEY, opened timestamptz NOT NULL);
CREATE TABLE ticket_event (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ticket_id integer NOT NULL REFERENCES ticket (id),
    at timestamptz NOT NULL,
    state text NOT NULL
);
CREATE INDEX ticket_event_latest ON ticket_event (ticket_id, at DESC, id DESC);
"""
TICKETS = {
    "history": "public.ticket_event",
    "key": "ticket_id",
    "latest_by": ["-at", "-id"],
    "status": "state",
    "statuses": ["open", "closed"],
    "parent": "public.ticket",
    "parent_key": "id",
    "parent_created": "opened",
}
# The declared states, and three values that must count under their own value.
VALUES = ["open", "closed", "none", "", "escalated"]
T0 = dt.datetime(2026, 11, 2, 9, tzinfo=dt.UTC)


@pytest.fixture
def tickets(transactional_db, settings) -> Iterator[None]:
    """The tickets declared as the source; the example's declaration again after."""
    with connection.cursor() as cursor:
        cursor.execute(TICKETS_DDL)
    try:
        with declared(settings, TICKETS):
            yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE ticket_event, ticket")


def _reset() -> None:
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE ticket_event, ticket, reporting_orderchange, reporting_refreshrun")
    assert services.views_refresh(force=True).outcome == RefreshOutcome.OK


def _fetch(sql: str, params: list | None = None) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def brute_force() -> dict:
    """Every latest row with its status_since, the counts and the daily counts, by the definition."""
    rows = [StatusRow(*row) for row in _fetch("SELECT id, ticket_id, at, state FROM ticket_event")]
    return brute_force_by_key(rows, dict(_fetch("SELECT id, opened FROM ticket")))


ROWS = "SELECT order_id, status_id, status::text, status_created, status_since FROM {} ORDER BY order_id"


def realtime_in_sql() -> dict:
    """The same from each real-time relation and function; every one of them must agree."""
    rows = _fetch(ROWS.format("reporting.order_latest_status_live"))
    assert _fetch(ROWS.format("public.reporting_latest_status_rows(NULL)")) == rows, "the rows function"
    assert _fetch(ROWS.format("reporting.order_latest_row_live")) == rows, "the BI view with the columns"
    for value in VALUES:
        page = _fetch(
            "SELECT order_id, status_id, status, status_created, status_since "
            "FROM public.reporting_latest_status_page(%s, NULL, NULL, NULL, 1000)",
            [value],
        )
        assert sorted(page) == [row for row in rows if row[2] == value], f"the page function for {value!r}"
        assert page == sorted(page, key=lambda r: (r[3], r[0]), reverse=True), "pages in list order"
    counts = dict(_fetch("SELECT status, orders FROM reporting.order_status_counts_live"))
    daily = {(day, s): n for day, s, n in _fetch("SELECT * FROM reporting.order_daily_status_live")}
    computed = {
        (day, s): n
        for day, s, n in _fetch(
            "SELECT * FROM public.reporting_order_daily_status_computed(%s, %s)",
            [dt.date(2026, 10, 1), dt.date(2026, 12, 31)],
        )
    }
    assert computed == daily, "the live strategy's daily counts"
    return {"rows": rows, "counts": {s: n for s, n in counts.items() if n}, "daily": daily}


def snapshot_in_sql() -> dict:
    counts = dict(_fetch("SELECT status, orders FROM reporting.order_status_counts"))
    return {
        "rows": _fetch(ROWS.format("reporting.order_latest_status")),
        "counts": {s: n for s, n in counts.items() if n},
        "daily": {(day, s): n for day, s, n in _fetch("SELECT * FROM reporting.order_daily_status")},
    }


def assert_selectors(expected: dict, as_of_refresh: dict) -> None:
    """StatusCounts.none is the keys without rows (NULL), in every strategy; values count as they are."""
    for strategy, wanted in (("live", expected), ("realtime", expected), ("snapshot", as_of_refresh)):
        counts = selectors.order_status_counts(strategy=strategy)
        assert counts.none == wanted["counts"].get(None, 0), f"{strategy}: none is the keys without rows"
        got = {status: n for status, n in counts.counts.items() if n}
        assert got == {s: n for s, n in wanted["counts"].items() if s is not None}, strategy
    for strategy in ("live", "realtime"):
        for status in TICKETS["statuses"]:
            listed = [row[:5] for row in selectors.order_iter_by_status(status=status, strategy=strategy)]
            assert sorted(listed) == [row for row in expected["rows"] if row[2] == status], (strategy, status)


def assert_detail(expected: dict, as_of_refresh: dict) -> None:
    """An order's page reads its latest row, status_since included, by every strategy."""
    snapshot = {row[0]: row for row in as_of_refresh["rows"]}
    for row in expected["rows"]:
        detail = selectors.order_detail(order_id=row[0])
        for strategy, wanted in (("live", row), ("realtime", row), ("snapshot", snapshot.get(row[0]))):
            seen = detail.by_strategy[strategy].row
            assert (tuple(seen[:5]) if seen else None) == wanted, (strategy, row[0])


def assert_exact(what: str, as_of_refresh: dict) -> dict:
    expected = brute_force()
    assert realtime_in_sql() == expected, f"realtime after {what}"
    assert snapshot_in_sql() == as_of_refresh, f"snapshot after {what}"
    assert_selectors(expected, as_of_refresh)
    assert_detail(expected, as_of_refresh)
    return expected


def _events(events: list[tuple[int, int, str]]) -> None:
    with connection.cursor() as cursor:
        for key, seconds, state in events:
            cursor.execute(
                "INSERT INTO ticket_event (ticket_id, at, state) VALUES (%s, %s, %s)",
                [key, T0 + dt.timedelta(seconds=seconds), state],
            )


def _ticket(key: int, days_ago: int = 0) -> None:
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO ticket VALUES (%s, %s)", [key, T0 - dt.timedelta(days=days_ago)])


def test_none_empty_and_undeclared_values_count_as_themselves_through_refresh_fold_and_realtime(tickets):
    _reset()
    for key in range(1, 7):
        _ticket(key, days_ago=key % 2)
    _events(
        [
            (1, 0, "open"),
            (1, 5, "none"),  # a state that says 'none'
            (2, 0, "open"),
            (2, 5, ""),  # an empty state
            (3, 0, "escalated"),  # undeclared
            (4, 0, "none"),
            (4, 9, "none"),  # 'none' twice: since is its first row
            (5, 3, "closed"),
            (5, 3, "closed"),  # a tie on the time, the same state
        ]
    )  # ticket 6 has no rows
    # Two refreshes: the second is concurrent, which matched rows on the counts'
    # unique index (two rows 'none' failed it).
    assert services.views_refresh(force=True).outcome == RefreshOutcome.OK
    assert services.views_refresh(force=True).outcome == RefreshOutcome.OK
    as_of_refresh = assert_exact("the refreshes", brute_force())
    assert as_of_refresh["counts"] == {"none": 2, "": 1, "escalated": 1, "closed": 1, None: 1}
    assert dict((r[0], r[4]) for r in as_of_refresh["rows"])[4] == T0, "entered 'none' at its first row"

    _events([(6, 1, "none"), (1, 7, "open"), (3, 8, ""), (5, 1, "open")])  # 5: a backfill, no change
    _ticket(7)  # no rows, after the refresh
    assert_exact("writes (the tail)", as_of_refresh)
    assert services.overlay_fold().outcome == "ok"
    assert_exact("a fold", as_of_refresh)
    _events([(6, 2, "none"), (2, 6, "none"), (7, 0, "")])
    assert services.overlay_fold().outcome == "ok"
    _events([(1, 8, "open")])
    assert_exact("a second fold and a tail", as_of_refresh)
    assert services.views_refresh(force=True).outcome == RefreshOutcome.OK
    as_of_refresh = assert_exact("a refresh", brute_force())
    assert as_of_refresh["counts"] == {"none": 3, "open": 1, "": 2, "closed": 1}


steps = st.lists(
    st.one_of(
        # A new ticket, opened some days ago, with a few events (or none).
        st.tuples(
            st.just("ticket"),
            st.tuples(
                st.integers(0, 2),
                st.lists(st.tuples(st.integers(0, 3), st.sampled_from(VALUES)), max_size=3),
            ),
        ),
        # Events of existing tickets, by index; small offsets make ties and backfills.
        st.tuples(
            st.just("events"),
            st.lists(st.tuples(st.integers(0, 30), st.integers(0, 4), st.sampled_from(VALUES)), max_size=4),
        ),
        st.tuples(st.just("delete_event"), st.integers(0, 50)),
        st.tuples(st.just("edit_event"), st.tuples(st.integers(0, 50), st.sampled_from(VALUES))),
        st.tuples(st.just("truncate"), st.none()),
        st.tuples(st.just("refresh"), st.booleans()),
        st.tuples(st.just("fold"), st.none()),
        st.tuples(st.just("fold"), st.none()),
    ),
    min_size=1,
    max_size=8,
)


def _apply(step, next_key: list[int]) -> None:
    kind, arg = step
    keys = [row[0] for row in _fetch("SELECT id FROM ticket ORDER BY id")]
    events = [row[0] for row in _fetch("SELECT id FROM ticket_event ORDER BY id")]
    if kind == "ticket":
        days_ago, history = arg
        next_key[0] += 1
        _ticket(next_key[0], days_ago)
        _events([(next_key[0], seconds, state) for seconds, state in history])
    elif kind == "events" and keys:
        _events([(keys[i % len(keys)], seconds, state) for i, seconds, state in arg])
    elif kind == "delete_event" and events:
        _fetch("DELETE FROM ticket_event WHERE id = %s RETURNING id", [events[arg % len(events)]])
    elif kind == "edit_event" and events:
        index, state = arg
        _fetch(
            "UPDATE ticket_event SET state = %s, at = %s WHERE id = %s RETURNING id",
            [state, T0 + dt.timedelta(seconds=index % 4), events[index % len(events)]],
        )
    elif kind == "truncate":
        with connection.cursor() as cursor:
            cursor.execute("TRUNCATE ticket_event")
    elif kind == "fold":
        assert services.overlay_fold().outcome in ("ok", "needs a refresh")
    elif kind == "refresh":
        assert services.views_refresh(concurrently=arg).outcome in (
            RefreshOutcome.OK,
            RefreshOutcome.UNCHANGED,
        )


def test_every_strategy_equals_the_brute_force_with_any_status_value(tickets):
    @settings(
        max_examples=examples(20),
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(steps=steps)
    def run(steps):
        _reset()
        as_of_refresh = brute_force()
        next_key = [0]
        for step in steps:
            _apply(step, next_key)
            if step[0] == "refresh":
                as_of_refresh = brute_force()
            assert_exact(step[0], as_of_refresh)

    run()


# Text a spreadsheet runs as a formula, by its first character; and text it does not.
FORMULAS = ["=1+1", "+1+1", "-1+1", "@SUM(A1)", "\t=1+1", "\r=1+1"]
NOT_FORMULAS = ["-1.5", "plain", "a=b"]


@pytest.fixture
def noted_tickets(transactional_db, settings) -> Iterator[None]:
    """The tickets with a text column declared to show (``note``)."""
    with connection.cursor() as cursor:
        cursor.execute(TICKETS_DDL)
        cursor.execute("ALTER TABLE ticket_event ADD COLUMN note text")
    try:
        with declared(settings, {**TICKETS, "columns": ["note"]}):
            yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE ticket_event, ticket")


@pytest.mark.parametrize("strategy", ["snapshot", "realtime"])
def test_the_csv_export_quotes_every_formula_start_in_a_status_and_a_declared_column(noted_tickets, strategy):
    """A cell starting with =, +, -, @, a tab or a carriage return is written after a
    quote (a spreadsheet would run it); a plain number or other text is not."""
    from reporting import exports

    _reset()
    values = FORMULAS + NOT_FORMULAS
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO ticket SELECT i, %s FROM generate_series(1, %s) AS i", [T0, len(values)])
        for key, value in enumerate(values, start=1):
            # The value both as the ticket's latest state and as that row's note.
            cursor.execute(
                "INSERT INTO ticket_event (ticket_id, at, state, note) VALUES (%s, %s, %s, %s)",
                [key, T0, value, value],
            )
    if strategy == "snapshot":
        assert services.views_refresh().outcome == RefreshOutcome.OK
    for value in values:
        exported = b"".join(exports.orders_csv_chunks(status=value, strategy=strategy)).decode()
        header, *rows = csv.reader(io.StringIO(exported, newline=""))
        assert header == ["order_id", "status_id", "status", "status_created", "status_since", "note"]
        expected = f"'{value}" if value in FORMULAS else value
        assert [(row[2], row[5]) for row in rows] == [(expected, expected)], repr(value)


def test_the_csv_export_of_any_status_has_a_safe_file_name(noted_tickets, admin_client, settings):
    """A status is any text the history holds; its CSV's file name keeps only safe characters.

    A line break in the Content-Disposition header made Django refuse the response (a 500).
    """
    settings.REPORTING_CSV_EXPORTS_PER_HOUR = 0
    _reset()
    values = ["\r=1+1", 'a "quoted"/..\\status', "ünïcode", "..."]
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO ticket SELECT i, %s FROM generate_series(1, %s) AS i", [T0, len(values)])
        for key, value in enumerate(values, start=1):
            cursor.execute(
                "INSERT INTO ticket_event (ticket_id, at, state, note) VALUES (%s, %s, %s, %s)",
                [key, T0, value, ""],
            )
    for value in values:
        answer = admin_client.get("/api/orders.csv", {"status": value, "strategy": "live"})
        assert answer.status_code == 200, (value, answer.content[:200])
        disposition = answer["Content-Disposition"]
        name = disposition.removeprefix('attachment; filename="').removesuffix('"')
        assert re.fullmatch(r"orders-[A-Za-z0-9._-]+-\d{8}T\d{6}Z\.csv", name), disposition
        rows = list(csv.reader(io.StringIO(b"".join(answer.streaming_content).decode(), newline="")))
        assert len(rows) == 2, rows
