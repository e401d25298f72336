from __future__ import annotations

import datetime as dt

import pytest
from django.db import IntegrityError, connection, transaction

from examples.shop import services as shop_services
from examples.shop.models import Order, OrderStatus
from reporting.exceptions import InvalidParameterError, InvalidStatusError, UnknownOrderError
from reporting.models import OrderLatestStatus
from reporting.read_models import HistoryRow, KeyRow
from tests.factories import EPOCH


@pytest.mark.django_db
def test_order_create_records_the_initial_pending_status():
    order = shop_services.order_create(created=EPOCH)
    assert list(order.statuses.values_list("status", "created")) == [("pending", EPOCH)]


@pytest.mark.django_db
def test_order_status_record_appends_a_status():
    order = shop_services.order_create()
    row = shop_services.order_status_record(order_id=order.pk, status="complete")
    assert row.pk is not None
    assert list(order.statuses.order_by("id").values_list("status", flat=True)) == ["pending", "complete"]


@pytest.mark.django_db
@pytest.mark.parametrize("status", ["failed", "", "Cancelled", None, 3])
def test_an_invalid_status_is_refused_and_nothing_is_written(status):
    order = shop_services.order_create()
    with pytest.raises(InvalidStatusError, match="valid values: pending, complete, cancelled"):
        shop_services.order_status_record(order_id=order.pk, status=status)
    assert OrderStatus.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("order_id", [0, -1, 10**12, "1", None])
def test_an_unknown_order_is_refused_and_nothing_is_written(order_id):
    shop_services.order_create()
    with pytest.raises(UnknownOrderError, match="unknown order"):
        shop_services.order_status_record(order_id=order_id, status="complete")
    assert OrderStatus.objects.count() == 1


@pytest.mark.django_db
def test_the_database_refuses_an_invalid_status_from_raw_sql():
    order = shop_services.order_create()
    with (
        pytest.raises(IntegrityError, match="reporting_orderstatus_status_valid"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(
            "INSERT INTO reporting_example_orderstatus (order_id, created, status) VALUES (%s, "
            "now(), 'failed')",
            [order.pk],
        )
    assert OrderStatus.objects.count() == 1


@pytest.mark.django_db
def test_writes_through_the_read_only_view_model_raise(refreshed):
    order = shop_services.order_create()
    refreshed()
    row = OrderLatestStatus.objects.get(order_id=order.pk)
    with pytest.raises(NotImplementedError):
        row.save()
    with pytest.raises(NotImplementedError):
        row.delete()
    with pytest.raises(NotImplementedError):
        OrderLatestStatus.objects.filter(order_id=order.pk).update(status="cancelled")
    with pytest.raises(NotImplementedError):
        OrderLatestStatus.objects.filter(order_id=order.pk).delete()
    with pytest.raises(NotImplementedError):
        OrderLatestStatus.objects.create(
            order_id=order.pk, status_id=1, status="pending", status_created=EPOCH
        )
    with pytest.raises(NotImplementedError):
        OrderLatestStatus.objects.bulk_create([])
    assert OrderLatestStatus.objects.get(order_id=order.pk).status == "pending"
    # The models over the views generated from the declaration: a simple view is
    # updatable in PostgreSQL, so the ORM is what refuses.
    for model in (HistoryRow, KeyRow):
        generated = model.objects.first()
        assert generated is not None
        with pytest.raises(NotImplementedError):
            generated.save()
        with pytest.raises(NotImplementedError):
            model.objects.all().update(created=EPOCH)
        with pytest.raises(NotImplementedError):
            model.objects.all().delete()


@pytest.mark.django_db
def test_seed_follows_the_history_rules():
    until = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
    result = shop_services.orders_seed(orders=3000, seed=7, until=until, batch_size=700)
    assert (result.orders, result.first_order_id, result.last_order_id) == (3000, 1, 3000)
    histories: dict[int, list[tuple]] = {}
    for order_id, created, status in OrderStatus.objects.order_by("order_id", "created", "id").values_list(
        "order_id", "created", "status"
    ):
        histories.setdefault(order_id, []).append((created, status))
    orders = dict(Order.objects.values_list("id", "created"))
    assert set(histories) == set(orders), "every seeded order has a history"
    assert result.statuses == sum(len(h) for h in histories.values())
    allowed = {
        ("pending",),
        ("pending", "complete"),
        ("pending", "cancelled"),
        ("pending", "complete", "cancelled"),
    }
    shapes: dict[tuple, int] = {}
    for order_id, history in histories.items():
        shape = tuple(status for _, status in history)
        assert shape in allowed, f"order {order_id} has history {shape}"
        assert history[0][0] == orders[order_id], "pending is recorded when the order is created"
        assert all(created <= until for created, _ in history)
        assert orders[order_id] >= until - shop_services.SEED_SPAN
        shapes[shape] = shapes.get(shape, 0) + 1
    share = {shape: n / 3000 for shape, n in shapes.items()}
    assert 0.55 < share[("pending", "complete")] < 0.70, share
    assert 0.15 < share[("pending", "cancelled")] < 0.25, share
    assert 0.03 < share[("pending", "complete", "cancelled")] < 0.10, share
    assert 0.05 < share[("pending",)] < 0.15, share


def _histories() -> list[tuple]:
    return list(OrderStatus.objects.order_by("id").values_list("order_id", "created", "status"))


@pytest.mark.django_db
def test_seed_is_deterministic_for_a_seed():
    until = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
    with transaction.atomic():
        shop_services.orders_seed(orders=500, seed=42, until=until, batch_size=128)
        first = _histories()
        orders = list(Order.objects.order_by("id").values_list("id", "created"))
        transaction.set_rollback(True)
    with transaction.atomic():
        shop_services.orders_seed(orders=500, seed=42, until=until, batch_size=500)
        assert list(Order.objects.order_by("id").values_list("id", "created")) == orders
        # Status ids come from a sequence that rollbacks do not reset: compare the rest.
        assert _histories() == first
        transaction.set_rollback(True)
    shop_services.orders_seed(orders=500, seed=43, until=until)
    assert _histories() != first, "another seed gives other histories"


@pytest.mark.django_db
def test_seed_refuses_a_bad_count():
    with pytest.raises(InvalidParameterError, match="orders"):
        shop_services.orders_seed(orders=0)
    assert not Order.objects.exists()
