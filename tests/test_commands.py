from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from reporting.models import Order, OrderLatestStatus


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
