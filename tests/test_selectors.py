from __future__ import annotations

import datetime as dt

import pytest
from django.db import transaction
from hypothesis import given
from hypothesis import strategies as st

from examples.shop.models import OrderStatus, Status
from reporting import selectors
from reporting.choices import Strategy
from reporting.exceptions import InvalidParameterError, InvalidStatusError
from tests.brute_force import brute_force_latest
from tests.factories import EPOCH, all_status_rows, brute_force_lists, orders_create, statuses_create

# These tests run inside one test transaction, where no refresh is ever recorded
# as committed: realtime reads take their full-recompute path here. The change-log
# path is property-tested with real commits in test_realtime.py.
READ_STRATEGIES = [Strategy.LIVE, Strategy.SNAPSHOT, Strategy.REALTIME]

# Timestamps from a range of a few seconds, so equal timestamps are common and
# rows inserted later often carry an older timestamp (backfills).
status_rows = st.lists(st.tuples(st.integers(0, 4), st.sampled_from(Status.values)), max_size=4)
histories = st.lists(status_rows, min_size=1, max_size=10)


def expected_counts(rows, order_ids) -> dict[str, int]:
    latest = brute_force_latest(rows)
    counts = {status: sum(1 for r in latest.values() if r.status == status) for status in Status.values}
    counts["none"] = len(set(order_ids) - set(latest))
    return counts


def read_all_pages(status: str, strategy: str, limit: int) -> list[tuple]:
    rows: list[tuple] = []
    after, pages = None, 0
    while True:
        page = selectors.order_list_by_status(status=status, strategy=strategy, after=after, limit=limit)
        assert len(page.rows) <= limit
        rows.extend(r[:4] for r in page.rows)
        pages += 1
        assert pages < 1000, "pagination does not end"
        if page.next_after is None:
            return rows
        after = page.next_after


def assert_strategy_matches(strategy: str, rows, order_ids) -> None:
    expected = brute_force_lists(rows)
    for status in Status.values:
        streamed = [r[:4] for r in selectors.order_iter_by_status(status=status, strategy=strategy)]
        assert streamed == expected[status], f"{strategy} {status}: streamed list differs from brute force"
        for limit in (1, 3):
            assert read_all_pages(status, strategy, limit) == expected[status], (
                f"{strategy} {status}: pages of {limit} differ from brute force"
            )
    counts = selectors.order_status_counts(strategy=strategy)
    assert counts.as_dict() == expected_counts(rows, order_ids), f"{strategy}: counts differ"
    assert counts.total == len(order_ids)
    assert counts.strategy == strategy


def write_histories(history_spec, deletions) -> tuple[list[int], list]:
    order_ids = orders_create(len(history_spec))
    inserted = statuses_create(
        [
            (order_id, EPOCH + dt.timedelta(seconds=sec), status)
            for order_id, spec in zip(order_ids, history_spec, strict=True)
            for sec, status in spec
        ]
    )
    if inserted and deletions:
        doomed = {inserted[i % len(inserted)].id for i in deletions}
        OrderStatus.objects.filter(id__in=doomed).delete()
    return order_ids, all_status_rows()


@pytest.mark.django_db
@given(history_spec=histories, deletions=st.lists(st.integers(0, 100), max_size=3), more=histories)
def test_every_strategy_equals_brute_force(refreshed, history_spec, deletions, more):
    with transaction.atomic():
        order_ids, rows = write_histories(history_spec, deletions)
        refreshed()
        for strategy in READ_STRATEGIES:
            assert_strategy_matches(strategy, rows, order_ids)

        # Writes after the refresh: live and realtime follow them, the snapshot
        # still answers exactly as of its refresh.
        snapshot_lists = brute_force_lists(rows)
        more_ids, later_rows = write_histories(more, [])
        for strategy in (Strategy.LIVE, Strategy.REALTIME):
            assert_strategy_matches(strategy, later_rows, order_ids + more_ids)
        for status in Status.values:
            got = [r[:4] for r in selectors.order_iter_by_status(status=status, strategy=Strategy.SNAPSHOT)]
            assert got == snapshot_lists[status], f"snapshot {status} is not the state as of its refresh"
        transaction.set_rollback(True)


@pytest.mark.django_db
def test_backfill_and_equal_timestamps_follow_the_definition(refreshed):
    (order,) = orders_create(1)
    t = EPOCH
    statuses_create([(order, t, "pending"), (order, t + dt.timedelta(hours=1), "complete")])
    # A backfill with an older timestamp does not become the latest...
    statuses_create([(order, t + dt.timedelta(minutes=5), "cancelled")])
    refreshed()
    for strategy in READ_STRATEGIES:
        assert [r.order_id for r in selectors.order_iter_by_status(status="complete", strategy=strategy)] == [
            order
        ], strategy
    # ...and with an equal timestamp the higher id wins.
    statuses_create([(order, t + dt.timedelta(hours=1), "cancelled")])
    refreshed()
    for strategy in READ_STRATEGIES:
        page = selectors.order_list_by_status(status="cancelled", strategy=strategy)
        assert [r.order_id for r in page.rows] == [order], strategy
        assert page.next_after is None


@pytest.mark.django_db
@pytest.mark.parametrize("strategy", READ_STRATEGIES)
def test_bad_parameters_are_refused_with_the_valid_values(strategy):
    with pytest.raises(InvalidStatusError, match=r"'failed'.*pending, complete, cancelled"):
        selectors.order_list_by_status(status="failed", strategy=strategy)
    with pytest.raises(InvalidStatusError):
        list(selectors.order_iter_by_status(status="failed", strategy=strategy))
    with pytest.raises(InvalidParameterError, match="limit"):
        selectors.order_list_by_status(status="pending", strategy=strategy, limit=0)
    with pytest.raises(InvalidParameterError, match="limit"):
        selectors.order_list_by_status(status="pending", strategy=strategy, limit=selectors.MAX_PAGE_SIZE + 1)
    with pytest.raises(InvalidParameterError, match=r"strategy 'fastest'.*live"):
        selectors.order_status_counts(strategy="fastest")
