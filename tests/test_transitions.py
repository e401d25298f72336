"""Status analytics: changes per day and time to complete / to cancel, against the history."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from hypothesis import given, settings
from hypothesis import strategies as st

from examples.shop.models import Order, OrderStatus, Status
from reporting import selectors, services
from reporting.choices import RefreshOutcome, Strategy
from reporting.exceptions import InvalidParameterError
from tests.brute_force import brute_force_transition_times, brute_force_transitions
from tests.factories import TODAY, all_status_rows, reset, transitions_read
from tests.helpers import examples

pytestmark = pytest.mark.django_db(transaction=True)

STATUSES = Status.values
# Rows a few seconds apart, over four days that straddle a week's start more often than not:
# equal timestamps (ties broken by id), backfills before an order's first row, and
# changes on different days and weeks.
offsets = st.tuples(st.integers(0, 3), st.integers(0, 2))
histories = st.lists(
    st.lists(st.tuples(offsets, st.sampled_from(STATUSES)), max_size=4), min_size=1, max_size=6
)
edits = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.integers(0, 20), offsets, st.sampled_from(STATUSES)),
        st.tuples(st.just("delete_status"), st.integers(0, 50)),
        st.tuples(st.just("edit_status"), st.integers(0, 50), offsets, st.sampled_from(STATUSES)),
        st.tuples(st.just("delete_order"), st.integers(0, 20)),
        st.tuples(st.just("new_order"), st.lists(st.tuples(offsets, st.sampled_from(STATUSES)), max_size=3)),
    ),
    max_size=5,
)


def at(offset: tuple[int, int]) -> dt.datetime:
    days_ago, seconds = offset
    return TODAY - dt.timedelta(days=days_ago) + dt.timedelta(seconds=seconds)


def create(history: list) -> None:
    order = Order.objects.create(created=TODAY)
    OrderStatus.objects.bulk_create([OrderStatus(order=order, created=at(o), status=s) for o, s in history])


def edit(step: tuple) -> None:
    kind = step[0]
    order_ids = list(Order.objects.order_by("id").values_list("id", flat=True))
    status_ids = list(OrderStatus.objects.order_by("id").values_list("id", flat=True))
    if kind == "append" and order_ids:
        OrderStatus.objects.create(
            order_id=order_ids[step[1] % len(order_ids)], created=at(step[2]), status=step[3]
        )
    elif kind == "delete_status" and status_ids:
        OrderStatus.objects.filter(id=status_ids[step[1] % len(status_ids)]).delete()
    elif kind == "edit_status" and status_ids:
        OrderStatus.objects.filter(id=status_ids[step[1] % len(status_ids)]).update(
            created=at(step[2]), status=step[3]
        )
    elif kind == "delete_order" and order_ids:
        Order.objects.filter(id=order_ids[step[1] % len(order_ids)]).delete()
    elif kind == "new_order":
        create(step[1])


def expected() -> tuple[dict, dict]:
    rows = all_status_rows()
    return brute_force_transitions(rows), brute_force_transition_times(rows)


@settings(max_examples=examples(40), deadline=None)
@given(before=histories, after=edits, folded=edits)
def test_every_strategy_equals_the_history_after_changes_since_the_refresh(before, after, folded):
    reset()
    for history in before:
        create(history)
    assert services.views_refresh().outcome == RefreshOutcome.OK
    at_refresh = expected()
    assert transitions_read(Strategy.SNAPSHOT) == at_refresh
    # Changes folded into the overlay, then more changes (the tail), of the same orders too.
    for step in folded:
        edit(step)
    assert services.overlay_fold().outcome == "ok"
    assert transitions_read(Strategy.REALTIME) == expected()
    for step in after:
        edit(step)
    now = expected()
    assert transitions_read(Strategy.REALTIME) == now
    assert transitions_read(Strategy.LIVE) == now
    assert transitions_read(Strategy.SNAPSHOT) == at_refresh
    # A second fold takes orders that are in the overlay already.
    assert services.overlay_fold().outcome == "ok"
    assert transitions_read(Strategy.REALTIME) == now
    # After a TRUNCATE the change log cannot say which orders changed: everything is recomputed.
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE reporting_example_orderstatus")
    assert transitions_read(Strategy.REALTIME) == ({}, {})


def test_a_shop_day_counts_paid_refunded_and_failed_orders():
    reset()
    paid, refunded, failed, waiting, repeated = (Order.objects.create(created=TODAY) for _ in range(5))
    hour = dt.timedelta(hours=1)
    rows = [
        (paid, 0, "pending"),
        (paid, 2, "complete"),
        (refunded, 0, "pending"),
        (refunded, 1, "complete"),
        (refunded, 5, "cancelled"),
        (failed, 0, "pending"),
        (failed, 3, "cancelled"),
        (waiting, 0, "pending"),
        (repeated, 0, "pending"),
        (repeated, 1, "pending"),  # the same status again: no change
    ]
    OrderStatus.objects.bulk_create(
        [OrderStatus(order=o, created=TODAY - 12 * hour + h * hour, status=s) for o, h, s in rows]
    )
    services.views_refresh()
    day = TODAY.date()
    daily = selectors.order_transitions_daily(days=1, until=day)
    assert daily.totals() == {
        **dict.fromkeys(selectors.transition_kinds(), 0),
        ("pending", "complete"): 2,
        ("complete", "cancelled"): 1,
        ("pending", "cancelled"): 1,
    }
    times = selectors.order_transition_times(weeks=1, until=day)
    week = day - dt.timedelta(days=day.weekday())
    assert times.weeks == [week]
    # Complete after 1 h and 2 h; cancelled after 3 h and 5 h.
    assert times.series["complete"][0] == selectors.WeekTimes(2, 1.5 * hour, 1.9 * hour)
    assert times.series["cancelled"][0] == selectors.WeekTimes(2, 4 * hour, 4.8 * hour)
    assert times.freshness.strategy == Strategy.REALTIME


@pytest.mark.parametrize(
    ("call", "parameter"),
    [
        (lambda: selectors.order_transitions_daily(days=0), "days"),
        (lambda: selectors.order_transitions_daily(days=True), "days"),
        (lambda: selectors.order_transition_times(weeks=521), "weeks"),
        (lambda: selectors.order_transition_times(weeks="8"), "weeks"),  # type: ignore[arg-type]
        (lambda: selectors.order_transition_times(strategy="fast"), "strategy"),
    ],
)
def test_bad_parameters_are_named(call, parameter):
    with pytest.raises(InvalidParameterError) as raised:
        call()
    assert raised.value.parameter == parameter
