"""A second kind of history, not about orders: the latest reading of each sensor.

The same machinery, declared over tables nobody here modelled (``integer`` keys,
a ``taken_at`` timestamp, other status values, more columns to show), answers
every read strategy, the BI views and the HTTP API exactly as the brute force
over the readings says.
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import io
import random

import pytest
from django.db import connection
from django.urls import reverse

from reporting import selectors, services, source_install
from reporting.choices import RefreshOutcome
from tests.brute_force import brute_force_lists
from tests.helpers import sync_views
from tests.sources import Shape, assert_exact, expected, raw_rows, shape_declared

SENSORS_DDL = """
CREATE TABLE sensor (id integer PRIMARY KEY, installed timestamptz NOT NULL);
CREATE TABLE sensor_reading (
    id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sensor_id integer NOT NULL REFERENCES sensor (id),
    taken_at timestamptz NOT NULL,
    state varchar(40) NOT NULL,
    value numeric(8, 2) NOT NULL,
    note text
);
CREATE INDEX sensor_reading_latest ON sensor_reading (sensor_id, taken_at DESC, id DESC);
"""
# Any length: the reporting state keeps statuses as text.
STATES = ["ok", "warning", "alarm", "calibration_overdue_since_spring"]
SENSORS = Shape(
    name="sensors",
    declaration={
        "history": "public.sensor_reading",
        "key": "sensor_id",
        "latest_by": ["-taken_at", "-id"],
        "status": "state",
        "statuses": STATES,
        "parent": "public.sensor",
        "parent_key": "id",
        "parent_created": "installed",
        # Shown with each latest row: in the API, the CSV export and the BI views.
        "columns": ["value", "note"],
    },
    ddl=SENSORS_DDL,
    drop="DROP TABLE sensor_reading, sensor",
    rows_sql="SELECT id, sensor_id, taken_at, state FROM sensor_reading",
    keys_sql="SELECT id FROM sensor",
    insert_key_sql="INSERT INTO sensor (id, installed) VALUES (%s, %s) ON CONFLICT DO NOTHING",
    insert_row_sql="INSERT INTO sensor_reading (sensor_id, taken_at, state, value) VALUES (%s, %s, %s, 0)",
    reset_sql="TRUNCATE sensor_reading, sensor",
    key=lambda i: i + 1,
    values=tuple(STATES),
)
T0 = dt.datetime(2026, 5, 1, tzinfo=dt.UTC)


def _shown() -> dict[int, dict[str, object]]:
    """The declared columns of every reading, by reading id."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, value, note FROM sensor_reading")
        return {row_id: {"value": value, "note": note} for row_id, value, note in cursor.fetchall()}


def _write(cursor, rng: random.Random, sensors: int, count: int) -> None:
    """Readings at random: ties on taken_at, backfills older than the latest, a state set twice."""
    for _ in range(count):
        sensor = rng.randint(1, sensors)
        taken = T0 + dt.timedelta(minutes=rng.choice([0, 1, 1, 5, 60, 600]) + rng.randint(0, 3))
        cursor.execute(
            "INSERT INTO sensor_reading (sensor_id, taken_at, state, value, note) "
            "VALUES (%s, %s, %s, %s, %s)",
            [
                sensor,
                taken,
                rng.choice(STATES),
                decimal.Decimal(rng.randint(-9999, 9999)) / 100,
                rng.choice([None, "", "checked by Ana", '=HYPERLINK("http://x.example")', "-3 °C"]),
            ],
        )


@pytest.fixture
def sensors(transactional_db, settings):
    """The sensors declared as the source, the reporting views rebuilt over them; the example's after."""
    rng = random.Random(11)
    # integer keys, where the example's are bigint: the generated views change
    # type, so they are rebuilt with every view over them, as migrate would.
    with shape_declared(SENSORS, settings):
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO sensor SELECT g, %s + g * interval '1 hour' FROM generate_series(1, 60) g", [T0]
            )
            _write(cursor, rng, 50, 300)  # sensors 51 to 60 have no reading yet
        assert services.views_refresh(force=True).outcome == RefreshOutcome.OK
        yield rng


def _assert_exact(strategies: tuple[str, ...]) -> None:
    """Every strategy, page walk and SQL view exact (:func:`tests.sources.assert_exact`), and the
    declared columns shown with each latest row: in the lists, a page and the BI view."""
    assert_exact(SENSORS, strategies)
    want = expected(SENSORS)
    latest = want.latest
    shown = _shown()
    for strategy in strategies:
        for state in STATES:
            rows = list(selectors.order_iter_by_status(status=state, strategy=strategy))
            page = selectors.order_list_by_status(status=state, strategy=strategy, limit=7)
            assert [r.order_id for r in page.rows] == [t[0] for t in want.rows(state)[:7]], (strategy, state)
            # The declared columns, of each sensor's latest reading.
            assert [r.columns for r in rows] == [shown[t[1]] for t in want.rows(state)], (strategy, state)
            assert [r.columns for r in page.rows] == [shown[t[1]] for t in want.rows(state)[:7]]
    # What a BI tool reads: the real-time view of the latest rows, with the same columns.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT attname, col_description(attrelid, attnum) FROM pg_attribute "
            "WHERE attrelid = 'reporting.order_latest_row_live'::regclass AND attname IN ('value', 'note')"
        )
        described = dict(cursor.fetchall())
        assert set(described) == {"value", "note"} and all(described.values()), described
        cursor.execute(
            "SELECT order_id, status_id, status, status_created, value, note "
            "FROM reporting.order_latest_row_live ORDER BY status_created DESC, order_id DESC"
        )
        assert sorted(cursor.fetchall(), key=lambda r: r[1]) == sorted(
            (
                (key, row.id, row.status, row.created, shown[row.id]["value"], shown[row.id]["note"])
                for key, row in latest.items()
            ),
            key=lambda r: r[1],
        )


def test_every_strategy_reads_the_latest_reading_of_each_sensor_as_the_brute_force(sensors):
    _assert_exact(("live", "snapshot", "realtime"))
    rng = sensors
    with connection.cursor() as cursor:
        _write(cursor, rng, 60, 80)
    # Folded into the overlay, then more changes on top (the tail).
    assert services.overlay_fold().orders > 0
    _assert_exact(("live", "realtime"))
    with connection.cursor() as cursor:
        _write(cursor, rng, 60, 40)
        # A new sensor, a sensor's latest reading deleted, another moved to a new sensor.
        cursor.execute("INSERT INTO sensor VALUES (61, %s)", [T0])
        cursor.execute(
            "DELETE FROM sensor_reading WHERE id = (SELECT id FROM sensor_reading WHERE sensor_id = 3 "
            "ORDER BY taken_at DESC, id DESC LIMIT 1)"
        )
        cursor.execute(
            "UPDATE sensor_reading SET sensor_id = 61 WHERE id = (SELECT min(id) FROM sensor_reading)"
        )
    # Since the refresh the snapshot is stale; live and real-time are exact.
    _assert_exact(("live", "realtime"))


def _cell(note: object) -> str:
    """A note as the CSV must hold it: empty for NULL, a formula quoted so spreadsheets show it as text."""
    if note is None:
        return ""
    assert isinstance(note, str)
    return f"'{note}" if note.startswith(("=", "+", "-", "@")) else note


def test_the_api_answers_in_the_declared_statuses(sensors, client):
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission

    user = get_user_model().objects.create_user("sensors", password="sensors-password-1")
    user.user_permissions.add(Permission.objects.get(codename="view_reports"))
    client.force_login(user)
    counts = client.get(reverse("api-status-counts")).json()["counts"]
    assert set(counts) == {*STATES, "none"}, counts
    alarm = client.get(reverse("api-orders"), {"status": "alarm", "limit": 5})
    assert alarm.status_code == 200
    expected = brute_force_lists(raw_rows(SENSORS), STATES)["alarm"][:5]
    assert [row["order_id"] for row in alarm.json()["orders"]] == [t[0] for t in expected]
    # The declared columns, as JSON: numeric as a string (exact), NULL as null.
    shown = _shown()
    assert [(row["value"], row["note"]) for row in alarm.json()["orders"]] == [
        (str(shown[t[1]]["value"]), shown[t[1]]["note"]) for t in expected
    ]
    exported = b"".join(client.get(reverse("api-orders-csv"), {"status": "alarm"}).streaming_content)
    table = list(csv.reader(io.StringIO(exported.decode())))
    assert table[0] == ["order_id", "status_id", "status", "status_created", "status_since", "value", "note"]
    everything = brute_force_lists(raw_rows(SENSORS), STATES)["alarm"]
    assert [(int(r[0]), r[5], r[6]) for r in table[1:]] == [
        (t[0], str(shown[t[1]]["value"]), _cell(shown[t[1]]["note"])) for t in everything
    ]
    refused = client.get(reverse("api-orders"), {"status": "cancelled"})
    assert refused.status_code == 400
    assert "ok, warning, alarm, calibration_overdue_since_spring" in refused.json()["error"], refused.json()
    # The dashboard too: its charts, legend and tables follow the declared statuses.
    for params in ({}, {"status": "ok"}):
        page = client.get(reverse("dashboard"), params)
        assert page.status_code == 200, page.content[:2000]
        html = page.content.decode()
        assert "Stuck in ok for more than" in html
        # Of the twelve kinds of change, those that happened in the chart's days, by their statuses.
        for (before, after), n in selectors.order_transitions_daily(days=30).totals().items():
            assert (f'data-transition="{before}-{after}"><td>{before} → {after}</td>' in html) == bool(n)
        assert 'colspan="3">Alarm</th>' in html


def test_columns_of_values_python_cannot_hold_are_shown_as_postgresql_writes_them(sensors, client, settings):
    """'infinity', '24:00', months, NaN, JSON's 1e400: text in JSON and CSV, never a 500 or bad JSON."""
    import json

    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission

    with connection.cursor() as cursor:
        cursor.execute(
            "ALTER TABLE sensor_reading ADD COLUMN until timestamptz DEFAULT 'infinity', "
            "ADD COLUMN spec json DEFAULT '{\"x\": 1e400}', ADD COLUMN ratio float8 DEFAULT 'NaN', "
            "ADD COLUMN span interval DEFAULT '1 mon 2 days', ADD COLUMN opens time DEFAULT '24:00', "
            "ADD COLUMN seen timestamptz[] DEFAULT ARRAY['-infinity'::timestamptz], "
            "ADD COLUMN items text DEFAULT '=1+1', ADD COLUMN delta float8 DEFAULT -1.5, "
            "ADD COLUMN raw bytea[] DEFAULT ARRAY['\\x01'::bytea]"
        )
    # "items": a name a template would take for the mapping's method.
    columns = ["until", "spec", "ratio", "span", "opens", "seen", "items", "delta", "raw"]
    settings.REPORTING_SOURCE = {**SENSORS.declaration, "columns": columns}
    assert source_install.source_install()
    sync_views()
    user = get_user_model().objects.create_user("sensors", password="sensors-password-1")
    user.user_permissions.add(*Permission.objects.filter(codename__in=["view_reports", "read_live"]))
    client.force_login(user)
    shown = {
        "until": "infinity",
        "spec": '{"x": 1e400}',
        "ratio": "NaN",
        "span": "1 mon 2 days",
        "opens": "24:00:00",
        "seen": ["-infinity"],
        "items": "=1+1",
        "delta": "-1.5",
        "raw": ["01"],
    }
    for strategy in ("snapshot", "realtime", "live"):
        answer = client.get(reverse("api-orders"), {"status": "alarm", "strategy": strategy, "limit": 3})
        assert answer.status_code == 200, answer.content

        def refuse(constant: str) -> None:
            raise AssertionError(f"not JSON: {constant}")

        rows = json.loads(answer.content, parse_constant=refuse)["orders"]
        assert rows and all({name: row[name] for name in columns} == shown for row in rows), rows
    exported = b"".join(client.get(reverse("api-orders-csv"), {"status": "alarm"}).streaming_content)
    table = list(csv.reader(io.StringIO(exported.decode())))
    assert table[0][5:] == columns
    assert all(
        line[5:]
        == [
            "infinity",
            '{"x": 1e400}',
            "NaN",
            "1 mon 2 days",
            "24:00:00",
            '["-infinity"]',
            "'=1+1",
            "-1.5",
            '["01"]',
        ]
        for line in table[1:]
    ), table[:3]
    assert client.get(reverse("dashboard"), {"status": "alarm"}).status_code == 200
    page = client.get(reverse("order", args=[rows[0]["order_id"]]))
    assert page.status_code == 200, page.content[:2000]
    assert 'data-column="items">items: =1+1</span>' in page.content.decode()
