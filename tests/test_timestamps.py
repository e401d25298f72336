"""History rows at times PostgreSQL takes and Python cannot hold: no change of status, and never a 503."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from django.contrib.auth import get_user_model
from django.db import connection

from reporting import checks, selectors, services
from reporting.choices import RefreshOutcome
from tests.brute_force import StatusRow, brute_force_latest
from tests.factories import orders_create, statuses_create

T0 = dt.datetime(2026, 4, 1, tzinfo=dt.UTC)
# 'infinity' breaks the interval arithmetic of the folds; the others have no Python datetime.
UNHELD = ["infinity", "-infinity", "0044-03-15 12:00:00+00 BC", "10000-01-01 00:00:00+00"]


def _finite_rows() -> list[StatusRow]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, order_id, created, status FROM reporting_example_orderstatus "
            "WHERE created BETWEEN '0001-01-02 00:00:00+00' AND '9999-12-30 00:00:00+00'"
        )
        return [StatusRow(*row) for row in cursor.fetchall()]


def _assert_exact(strategies: tuple[str, ...]) -> None:
    latest = brute_force_latest(_finite_rows())
    for strategy in strategies:
        counts = selectors.order_status_counts(strategy=strategy)
        for status in ("pending", "complete", "cancelled"):
            assert counts.counts[status] == sum(r.status == status for r in latest.values()), strategy
            rows = [tuple(r[:4]) for r in selectors.order_iter_by_status(status=status, strategy=strategy)]
            assert sorted(rows) == sorted(
                (r.order_id, r.id, r.status, r.created) for r in latest.values() if r.status == status
            ), (strategy, status)


@pytest.fixture
def shop(transactional_db, client):
    orders = orders_create(6, created=T0)
    statuses_create([(order, T0, "pending") for order in orders])
    assert services.views_refresh(force=True).outcome == RefreshOutcome.OK
    user = get_user_model().objects.create_superuser("times", password="times-password-1")
    client.force_login(user)
    return orders


def test_rows_at_times_python_cannot_hold_are_no_change_in_any_strategy_or_page(shop, client):
    with connection.cursor() as cursor:
        for order, when, status in zip(
            shop, UNHELD, ["cancelled", "complete", "cancelled", "complete"], strict=False
        ):
            cursor.execute(
                "INSERT INTO reporting_example_orderstatus (order_id, created, status) VALUES (%s, %s, %s)",
                [order, when, status],
            )
    statuses_create([(shop[4], T0 + dt.timedelta(hours=1), "complete")])
    _assert_exact(("live", "realtime"))
    # The fold computes intervals from each order's first row: 'infinity' made it fail for good.
    fold = services.overlay_fold()
    assert fold.orders == 5, fold
    _assert_exact(("live", "realtime"))
    assert services.views_refresh().outcome == RefreshOutcome.OK
    _assert_exact(("live", "snapshot", "realtime"))
    for order in shop[:4]:
        for url in (f"/api/orders/{order}", f"/orders/{order}"):
            answer = client.get(url)
            assert answer.status_code == 200, (url, answer.content[:300])
    for url in ("/", "/api/orders/stuck", "/api/transitions/times", "/api/transitions/daily"):
        assert client.get(url).status_code == 200, url
    exported = client.get("/api/orders.csv", {"status": "pending"})
    rows = list(csv.reader(io.StringIO(b"".join(exported.streaming_content).decode())))
    assert len(rows) == 1 + 5, rows  # the header, and orders 0 to 3 and 5
    (warning,) = [e for e in checks.source_errors("default") if e.id == "reporting.W006"]
    assert "holds 4 rows whose created is not between 0001-01-02 and 9999-12-30" in warning.msg
