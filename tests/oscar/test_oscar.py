"""The reporting backend on a schema nobody here wrote: django-oscar's order history.

Runs under ``examples.oscar_shop.settings`` (``make test`` runs it after the main
suite). Orders are made with Oscar's models and change status only through
Oscar's own ``Order.set_status``; every read strategy must agree with the brute
force over ``order_orderstatuschange``, and with Oscar's own ``order.status``.
"""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.contrib.sites.models import Site
from django.db import connection
from django.urls import reverse
from django.utils import timezone
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from oscar.core.loading import get_model

from reporting import checks, selectors, services
from reporting.choices import RefreshOutcome
from tests.brute_force import StatusRow, brute_force_counts, brute_force_lists
from tests.helpers import examples

pytestmark = pytest.mark.django_db(transaction=True)

# Oscar's models are loaded by name (a shop may fork them); its settings are the
# Oscar example's, which the type checker (set up for the main settings) does not see.
Order: Any = get_model("order", "Order")
OrderStatusChange: Any = get_model("order", "OrderStatusChange")
STATUSES = settings.REPORTING_SOURCE["statuses"]
PIPELINE: dict[str, tuple[str, ...]] = settings.OSCAR_ORDER_STATUS_PIPELINE  # type: ignore[misc]
INITIAL: str = settings.OSCAR_INITIAL_ORDER_STATUS  # type: ignore[misc]
_numbers = itertools.count(100_000)


def order_place(placed: dt.datetime | None = None) -> Any:
    """An order as Oscar stores one (its initial status recorded by the example app)."""
    return Order.objects.create(
        number=str(next(_numbers)),
        site=Site.objects.get_current(),
        currency="EUR",
        total_incl_tax=Decimal("12.00"),
        total_excl_tax=Decimal("10.00"),
        status=INITIAL,
        date_placed=placed or timezone.now(),
    )


def reset() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE order_order, order_orderstatuschange, reporting_orderchange, reporting_refreshrun "
            "CASCADE"
        )
    assert services.views_refresh(force=True).outcome == RefreshOutcome.OK


def brute_force() -> dict:
    """Lists and counts by the definition, from Oscar's history table."""
    rows = [
        StatusRow(*row)
        for row in OrderStatusChange.objects.values_list("id", "order_id", "date_created", "new_status")
    ]
    orders = Order.objects.values_list("pk", flat=True)
    return {"lists": brute_force_lists(rows, STATUSES), "counts": brute_force_counts(rows, orders, STATUSES)}


def read(strategy: str) -> dict:
    lists = {
        status: [r[:4] for r in selectors.order_iter_by_status(status=status, strategy=strategy)]
        for status in STATUSES
    }
    return {"lists": lists, "counts": selectors.order_status_counts(strategy=strategy).as_dict()}


def assert_exact(strategies: tuple[str, ...] = ("live", "realtime")) -> None:
    expected = brute_force()
    for strategy in strategies:
        assert read(strategy) == expected, strategy
    # Oscar's own denormalised order.status says the same as the latest history row.
    oscar = {
        status: sorted(Order.objects.filter(status=status).values_list("pk", flat=True))
        for status in STATUSES
    }
    assert {status: sorted(row[0] for row in rows) for status, rows in expected["lists"].items()} == oscar
    # The exactness audit, over every order, agrees (and finds nothing to recompute).
    audit = services.exactness_audit(sample=1000)
    assert (audit.outcome, audit.range_keys) == ("exact", Order.objects.count()), audit


def test_a_project_without_the_example_shop_has_none_of_its_tables():
    """The reporting app's migration makes none of the example shop's tables (examples.shop does)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT to_regclass('reporting_example_order'), to_regclass('reporting_example_orderstatus')"
        )
        assert cursor.fetchone() == (None, None)


def test_the_declaration_checks_clean_on_oscar_and_names_the_missing_index():
    assert checks.source_errors("default") == []
    with connection.cursor() as cursor:
        cursor.execute("DROP INDEX oscar_shop_statuschange_latest")
    try:
        (error,) = checks.source_errors("default")
        assert "no index of public.order_orderstatuschange serves its latest row per order_id" in error.msg
        assert '"order_id", "date_created" DESC, "id" DESC' in (error.hint or "")
    finally:
        with connection.cursor() as cursor:
            cursor.execute(
                'CREATE INDEX oscar_shop_statuschange_latest ON "order_orderstatuschange" '
                '("order_id", "date_created" DESC, "id" DESC)'
            )


def test_orders_through_oscars_api_are_reported_exactly_through_refreshes_and_folds():
    reset()
    orders = [order_place() for _ in range(12)]
    for order, path in zip(
        orders,
        itertools.cycle(
            [
                [],
                ["Being processed"],
                ["Being processed", "Complete"],
                ["Cancelled"],
                ["Being processed", "Cancelled"],
            ]
        ),
    ):
        for status in path:
            order.set_status(status)
    assert_exact(("live", "realtime"))
    assert services.views_refresh().outcome == RefreshOutcome.OK
    assert_exact(("live", "snapshot", "realtime"))
    for order in orders[:6]:
        order.refresh_from_db()
        if PIPELINE[order.status]:
            order.set_status(PIPELINE[order.status][-1])
    assert services.overlay_fold().orders > 0
    order_place()
    orders[7].refresh_from_db()
    if PIPELINE[orders[7].status]:
        orders[7].set_status(PIPELINE[orders[7].status][0])
    # Folded changes and a tail on top of them.
    assert_exact(("live", "realtime"))


steps = st.lists(
    st.one_of(
        st.tuples(st.just("place"), st.integers(1, 3)),
        # Move an existing order (by index) along the pipeline, to its n-th next status.
        st.tuples(st.just("set_status"), st.tuples(st.integers(0, 30), st.integers(0, 1))),
        st.tuples(st.just("refresh"), st.none()),
        st.tuples(st.just("fold"), st.none()),
        st.tuples(st.just("fold"), st.none()),
    ),
    max_size=10,
)


@hypothesis_settings(max_examples=examples(15))
@given(steps=steps)
def test_realtime_matches_the_brute_force_and_oscars_own_status_after_any_sequence(steps):
    reset()
    for kind, arg in steps:
        if kind == "place":
            for _ in range(arg):
                order_place()
        elif kind == "set_status":
            index, choice = arg
            ids = list(Order.objects.order_by("pk").values_list("pk", flat=True))
            if not ids:
                continue
            order = Order.objects.get(pk=ids[index % len(ids)])
            nexts = PIPELINE[order.status]
            if nexts:
                order.set_status(nexts[choice % len(nexts)])
        elif kind == "refresh":
            assert services.views_refresh().outcome in (RefreshOutcome.OK, RefreshOutcome.UNCHANGED)
        else:
            services.overlay_fold()
        assert_exact(("live", "realtime"))


def test_the_api_answers_in_oscars_statuses(client):
    reset()
    for path in ([], ["Being processed"], ["Cancelled"]):
        order = order_place()
        for status in path:
            order.set_status(status)
    user = get_user_model().objects.create_user("oscar-reports", password="oscar-reports-password-1")
    user.user_permissions.add(Permission.objects.get(codename="view_reports"))
    client.force_login(user)
    body = client.get(reverse("api-status-counts")).json()
    assert body["counts"] == {"Pending": 1, "Being processed": 1, "Complete": 0, "Cancelled": 1, "none": 0}
    page = client.get(reverse("api-orders"), {"status": "Being processed"}).json()
    assert [row["status"] for row in page["orders"]] == ["Being processed"]
    # The declared column of the latest change: where it changed from.
    assert [row["old_status"] for row in page["orders"]] == ["Pending"]
    cancelled = client.get(reverse("api-orders"), {"status": "Cancelled"}).json()["orders"]
    assert [row["old_status"] for row in cancelled] == ["Pending"]
    refused = client.get(reverse("api-orders"), {"status": "cancelled"})
    assert refused.status_code == 400
    assert "Pending, Being processed, Complete, Cancelled" in refused.json()["error"]
    dashboard = client.get(reverse("dashboard"), {"status": "Being processed"})
    assert dashboard.status_code == 200, dashboard.content[:2000]
    assert "Stuck in Pending for more than" in dashboard.content.decode()
