from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from reporting import selectors
from reporting.models import Order, OrderLatestStatus
from tests.conftest import raw_connect


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db(transaction=True)
def test_demo_seeds_an_empty_database_and_shows_matching_counts():
    output = run("demo", "--orders", "400")
    assert Order.objects.count() == 400
    assert "Counts match between the strategies." in output
    assert "Last cancelled, live" in output
    assert "Last cancelled, snapshot" in output
    assert "Last cancelled, realtime" in output
    assert OrderLatestStatus.objects.count() == 400, "demo refreshes the view"
    # A second run keeps the data it finds.
    assert "orders already present" in run("demo", "--orders", "400")
    assert Order.objects.count() == 400


@pytest.mark.django_db(transaction=True)
def test_seed_orders_and_refresh_views():
    assert "Seeded 250 orders (ids 1-250)" in run("seed_orders", "--orders", "250", "--seed", "3")
    assert "ok: reporting.order_latest_status" in run("refresh_views")
    assert OrderLatestStatus.objects.count() == 250
    assert "ok: reporting.order_latest_status" in run("refresh_views", "--no-concurrently", "--force")


@pytest.mark.django_db
@pytest.mark.parametrize("value", ["0", "-5", "many"])
def test_seed_orders_refuses_a_bad_count(value):
    with pytest.raises(CommandError, match="--orders"):
        run("seed_orders", "--orders", value)
    assert not Order.objects.exists()


@pytest.mark.django_db
def test_demo_refuses_a_bad_count():
    with pytest.raises(CommandError, match="--orders"):
        run("demo", "--orders", "0")
    assert not Order.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_demo_compares_the_strategies_in_one_snapshot_while_something_writes(monkeypatch):
    run("demo", "--orders", "300")
    counts = selectors.order_status_counts
    writes = {"n": 0}

    def counts_then_a_write(**kwargs):
        # Another session commits a new order with a status after each count the demo reads.
        result = counts(**kwargs)
        with raw_connect() as writer:
            order = writer.execute(
                "INSERT INTO reporting_order (created) VALUES (now()) RETURNING id"
            ).fetchone()
            writer.execute(
                "INSERT INTO reporting_orderstatus (order_id, created, status) "
                "VALUES (%s, now(), 'cancelled')",
                order,
            )
        writes["n"] += 1
        return result

    monkeypatch.setattr(selectors, "order_status_counts", counts_then_a_write)
    output = run("demo", "--orders", "300")
    assert writes["n"] == 3
    assert "live and realtime match" in output or "Counts match between the strategies." in output
    assert Order.objects.count() == 303


@pytest.mark.django_db
def test_the_models_and_the_migrations_agree():
    # makemigrations --check exits non-zero when a model change has no migration.
    run("makemigrations", "--check", "--dry-run")


@pytest.mark.django_db
@pytest.mark.parametrize("value", ["-1", "abc", "nan"])
def test_reporting_status_refuses_a_bad_max_age_in_plain_words(value):
    with pytest.raises(CommandError, match="expected a number of seconds, 0 or more"):
        run("reporting_status", "--max-age", value)
