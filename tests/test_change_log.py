"""Writes that bypass the change log: replica sessions are logged; disabled triggers are found and mended."""

from __future__ import annotations

import datetime as dt
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from reporting import selectors, services
from reporting.choices import RefreshOutcome
from scheduler.runner import FoldJob
from tests.factories import orders_create, statuses_create

T0 = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)


def _counts(strategy: str) -> dict[str, int]:
    return selectors.order_status_counts(strategy=strategy).as_dict()


@pytest.fixture
def shop(transactional_db):
    """Ten pending orders, refreshed: the views and the change log agree."""
    orders = orders_create(10, created=T0)
    statuses_create([(order, T0, "pending") for order in orders])
    assert services.views_refresh(force=True).outcome == RefreshOutcome.OK
    yield orders
    # A test that failed half-way must not leave the next ones a trigger off.
    services.change_log_repair()


def _insert(order: int, status: str, *, replica: bool = False) -> None:
    insert = "INSERT INTO reporting_example_orderstatus (order_id, created, status) VALUES (%s, %s, %s)"
    with connection.cursor() as cursor:
        if not replica:
            cursor.execute(insert, [order, T0 + dt.timedelta(hours=1), status])
            return
        # What a logical-replication subscriber and pg_restore --disable-triggers do
        # (a superuser's setting, or one granted: GRANT SET ON PARAMETER, PostgreSQL 15+).
        cursor.execute("SET session_replication_role = replica")
        try:
            cursor.execute(insert, [order, T0 + dt.timedelta(hours=1), status])
        finally:
            cursor.execute("RESET session_replication_role")


def test_writes_of_a_replica_session_are_logged(shop):
    _insert(shop[0], "complete", replica=True)
    assert _counts("realtime") == _counts("live")
    assert services.overlay_fold().orders == 1
    assert _counts("realtime") == _counts("live") and _counts("live")["complete"] == 1
    assert selectors.change_log_check() == []


@pytest.mark.parametrize(
    ("ddl", "problem"),
    [
        ("ALTER TABLE reporting_example_orderstatus DISABLE TRIGGER USER", "is disabled"),
        (
            "ALTER TABLE reporting_example_orderstatus DISABLE TRIGGER USER; "
            "ALTER TABLE reporting_example_orderstatus ENABLE TRIGGER USER",
            "fires only in origin sessions",
        ),
        ("DROP TRIGGER reporting_history_log_insert ON reporting_example_orderstatus", "is missing"),
    ],
)
def test_a_write_the_change_log_missed_is_found_said_and_recomputed(shop, client, ddl, problem):
    with connection.cursor() as cursor:
        cursor.execute(ddl)
    # A restore, or a bulk load, with the triggers off: the change log never sees it.
    _insert(shop[1], "cancelled", replica="origin" in problem)
    problems = selectors.change_log_check()
    assert problems and problem in problems[0], problems
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.json()["checks"]["change_log"] is False, ready.json()
    with pytest.raises(CommandError, match="writes bypass the change log"):
        call_command("reporting_status", stdout=StringIO())
    # The scheduler's fold mends it first: triggers on again, every key distrusted.
    requested: list[str] = []
    FoldJob(requested.append)()
    assert requested[:1] == ["the change log missed writes"], requested
    assert selectors.change_log_check() == []
    assert _counts("realtime") == _counts("live") and _counts("live")["cancelled"] == 1
    # Logged again from now on, also from replica sessions.
    _insert(shop[2], "complete", replica=True)
    assert _counts("realtime") == _counts("live") and _counts("live")["complete"] == 1
    assert services.views_refresh().outcome == RefreshOutcome.OK
    assert _counts("snapshot") == _counts("live")
    assert client.get("/readyz").json()["checks"]["change_log"] is True
