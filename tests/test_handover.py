"""The compaction's overlay handover: the orders changed while a compaction ran are in its new
generation's overlay when it commits, not all in the real-time reads' tail."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
from django.db import connection

from examples.shop.models import Order, OrderStatus
from reporting import services
from reporting.choices import RefreshOutcome
from reporting.models import Fold
from reporting.services import handover
from tests.factories import TODAY, change, seeded
from tests.helpers import raw_connect, writes_during_compaction
from tests.test_overlay import assert_exact

pytestmark = pytest.mark.django_db(transaction=True)


def _tail() -> set[int]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT order_id FROM reporting_pending_changes")
        return {order_id for (order_id,) in cursor.fetchall()}


def _while_it_ran() -> None:
    """Every kind of change the handover must carry, with a fold of the old generation among them:
    a new status of an order in the old overlay and of one that is not, a new order with
    statuses, a deleted order, an order row moved to another day, one moved and then deleted,
    and a status row deleted."""
    change([1, 7], status="complete", seconds=5)
    services.overlay_fold()
    change([8], status="pending", seconds=6)
    new = Order.objects.create(created=TODAY)
    OrderStatus.objects.create(order=new, created=TODAY, status="pending")
    OrderStatus.objects.create(order=new, created=TODAY + dt.timedelta(seconds=1), status="cancelled")
    OrderStatus.objects.filter(order_id=9).delete()
    Order.objects.filter(pk=9).delete()
    Order.objects.filter(pk=10).update(created=TODAY - dt.timedelta(days=2))
    Order.objects.filter(pk=12).update(created=TODAY - dt.timedelta(days=3))
    OrderStatus.objects.filter(order_id=12).delete()
    Order.objects.filter(pk=12).delete()
    OrderStatus.objects.filter(pk=OrderStatus.objects.filter(order_id=11).order_by("-id")[0].pk).delete()


def test_a_compaction_hands_what_changed_while_it_ran_to_its_new_overlay():
    seeded()
    change([1, 2])
    services.overlay_fold()
    with writes_during_compaction(_while_it_ran, after=lambda: change([3], seconds=9)):
        run = services.views_refresh()
    assert run.outcome == RefreshOutcome.OK
    fold = Fold.objects.get(generation=run.id)
    changed = {1, 7, 8, 9, 10, 11, 12, Order.objects.order_by("-pk")[0].pk}
    assert fold.orders == len(changed), "every order changed while the compaction ran"
    assert _tail() == {3}, "only what changed after the handover is left to recompute"
    assert_exact("right after the compaction, with the handed-over overlay")
    result = services.overlay_fold()
    assert (result.outcome, result.generation, result.orders) == ("ok", run.id, 1)
    assert_exact("after the first fold of the new generation")
    assert list(Fold.objects.values_list("generation", flat=True)) == [run.id], "the old overlay went"


def test_an_order_moved_to_another_day_while_the_compaction_ran_counts_on_its_new_day():
    """The handover cannot know the day a moved order counted on in the new views from the
    change log alone: it says so (the overlay's daily counts are not exact), and reads of the
    daily counts stay exact."""
    seeded()
    day = Order.objects.get(pk=10).created + dt.timedelta(days=2)
    change([1])
    with writes_during_compaction(lambda: Order.objects.filter(pk=10).update(created=day)):
        run = services.views_refresh()
    assert Fold.objects.get(generation=run.id).orders == 1
    assert_exact("an order moved while the compaction ran")


def test_a_handover_waits_briefly_for_the_fold_lock_then_the_compaction_commits_without_it(monkeypatch):
    seeded()
    change([1, 2])
    services.overlay_fold()
    monkeypatch.setattr(handover, "LOCK_WAIT", "100ms")
    holder = raw_connect(autocommit=False)
    try:

        def hold_the_fold_lock() -> None:
            change([4, 5], seconds=5)
            holder.execute("LOCK TABLE reporting_fold IN EXCLUSIVE MODE")

        with writes_during_compaction(hold_the_fold_lock):
            run = services.views_refresh()
    finally:
        holder.close()
    assert run.outcome == RefreshOutcome.OK
    assert not Fold.objects.filter(generation=run.id).exists()
    assert _tail() == {4, 5}, "the first fold will take them"
    assert_exact("a compaction without its handover")


def test_a_handover_that_fails_rolls_back_to_its_savepoint_and_the_compaction_commits(monkeypatch):
    seeded()
    change([1, 2])
    services.overlay_fold()
    # A real failure in the compaction's transaction, after the copies: nothing of them may stay.
    monkeypatch.setattr(
        handover, "APPLY_SQL", "SELECT %s::bigint, %s::text, %s::timestamptz, %s::bigint, 1 / 0"
    )
    with writes_during_compaction(lambda: change([4], seconds=5)):
        run = services.views_refresh()
    assert run.outcome == RefreshOutcome.OK
    assert not Fold.objects.filter(generation=run.id).exists()
    assert _tail() == {4}
    assert_exact("a compaction whose handover failed")
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM reporting_overlayorder WHERE generation = %s", [run.id])
        assert cursor.fetchone()[0] == 0


def test_the_first_compaction_has_nothing_to_hand_over():
    seeded()
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM reporting_refreshrun")
    with writes_during_compaction(lambda: change([4], seconds=5)):
        run = services.views_refresh()
    assert run.outcome == RefreshOutcome.OK
    assert not Fold.objects.filter(generation=run.id).exists()
    assert_exact("the first compaction")


def test_a_cancel_while_the_handover_runs_cancels_the_compaction():
    """The scheduler's stop cancels the compaction's server process; while the handover works on
    its other connection that process is idle, and the cancel must still end the compaction."""
    seeded()
    change([1])
    connection.ensure_connection()
    pid = connection.connection.info.backend_pid
    with writes_during_compaction(lambda: services.refresh_cancel(pid)):
        run = services.views_refresh()
    assert run.outcome == RefreshOutcome.CANCELLED
    assert not Fold.objects.filter(generation=run.id).exists(), "nothing of the compaction was kept"
    assert_exact("a compaction cancelled during its handover")


def test_a_handover_cancelled_by_pg_cancel_backend_cancels_the_compaction(monkeypatch):
    seeded()
    change([1])
    connection.ensure_connection()
    pid = connection.connection.info.backend_pid
    canceller = raw_connect()
    # A statement of the handover on the compaction's connection that waits long enough to be
    # cancelled from elsewhere.
    monkeypatch.setattr(handover, "STATUS_THEN_SQL", "SELECT pg_sleep(30)")
    try:
        with writes_during_compaction(lambda: change([2], seconds=5)):
            timer = threading.Timer(1.0, lambda: canceller.execute("SELECT pg_cancel_backend(%s)", [pid]))
            timer.start()
            run = services.views_refresh()
            timer.join()
    finally:
        canceller.close()
    assert run.outcome == RefreshOutcome.CANCELLED
    assert_exact("a compaction cancelled by pg_cancel_backend during its handover")


def test_an_idle_in_transaction_timeout_does_not_end_the_compaction_while_it_hands_over():
    """The compaction's transaction waits, idle, while the handover works on its other connection:
    a role's idle-in-transaction timeout shorter than that must not end it."""
    seeded()
    change([1])
    with connection.cursor() as cursor:
        cursor.execute("SET idle_in_transaction_session_timeout = '300ms'")
    try:

        def slow_writes() -> None:
            time.sleep(1.0)
            change([4], seconds=5)

        with writes_during_compaction(slow_writes):
            run = services.views_refresh()
    finally:
        connection.close()
    assert run.outcome == RefreshOutcome.OK, run.error
    assert Fold.objects.get(generation=run.id).orders == 1
    assert_exact("a compaction that waited idle for its handover")


def test_a_cancel_of_the_handovers_own_connection_only_skips_the_handover(monkeypatch):
    seeded()
    change([1])
    real = handover._changes_since

    def slow(cursor, snapshot):
        cursor.execute("SELECT pg_sleep(30)")
        return real(cursor, snapshot)

    monkeypatch.setattr(handover, "_changes_since", slow)
    canceller = raw_connect()

    def cancel_the_handover() -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            # By its statement, not its application_name, which a pooler does not pass on.
            row = canceller.execute(
                "SELECT pg_cancel_backend(pid) FROM pg_stat_activity "
                "WHERE query = 'SELECT pg_sleep(30)' AND pid <> pg_backend_pid()"
            ).fetchone()
            if row and row[0]:
                return
            time.sleep(0.05)

    timer = threading.Thread(target=cancel_the_handover)
    try:
        with writes_during_compaction(lambda: change([4], seconds=5)):
            timer.start()
            run = services.views_refresh()
        timer.join()
    finally:
        canceller.close()
    assert run.outcome == RefreshOutcome.OK, run.error
    assert not Fold.objects.filter(generation=run.id).exists()
    assert_exact("a compaction whose handover was cancelled")


def test_transactions_open_across_the_compaction_or_the_handover_are_counted_once():
    """A writer open when the compaction took its snapshot and committed before the handover: the
    handover carries it. A writer open when the handover folded and committed after it: the new
    tail holds it. Neither is lost, neither counted twice."""
    seeded()
    change([1])
    services.overlay_fold()
    insert = (
        "INSERT INTO reporting_example_orderstatus (order_id, created, status) VALUES (%s, %s, 'complete')"
    )
    across_compaction, across_handover = raw_connect(autocommit=False), raw_connect(autocommit=False)
    try:
        across_compaction.execute(insert, [20, TODAY + dt.timedelta(seconds=5)])

        def before() -> None:
            across_compaction.commit()
            across_handover.execute(insert, [21, TODAY + dt.timedelta(seconds=6)])

        with writes_during_compaction(before, after=across_handover.commit):
            run = services.views_refresh()
    finally:
        across_compaction.close()
        across_handover.close()
    assert run.outcome == RefreshOutcome.OK
    assert Fold.objects.get(generation=run.id).orders == 1, "order 20, committed before the handover"
    assert _tail() == {21}
    assert_exact("writers open across the compaction's and the handover's snapshots")
    services.overlay_fold()
    assert_exact("after the first fold")
