"""The overlay: folds between refreshes, their races, crashes and limits."""

from __future__ import annotations

import threading

import psycopg
import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from reporting import selectors, services
from reporting.choices import RefreshOutcome, Strategy
from reporting.models import Fold, OverlayOrder
from reporting.selectors.freshness import REALTIME_FRESHNESS_SQL
from reporting.sql_files import in_schema
from scheduler.runner import FoldJob
from tests.factories import brute_force_reports, change, reports_read, seeded, view_page
from tests.helpers import raw_connect

pytestmark = pytest.mark.django_db(transaction=True)


def assert_exact(what: str) -> None:
    expected = brute_force_reports()
    assert reports_read(Strategy.REALTIME, days=3660) == expected, what
    for status, rows in expected["lists"].items():
        assert view_page(status, 5) == rows[:5], f"{what}: the view's page of {status}"
        ids = selectors.order_ids_by_status(status=status, strategy="realtime")
        assert sorted(ids) == sorted(row[0] for row in rows), f"{what}: the ids of {status}"


def test_a_fold_takes_the_changes_into_the_overlay_and_the_tail_starts_after_it():
    seeded()
    change([1, 2, 3])
    assert selectors.freshness().changes_since == 3
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM reporting_pending_changes")
        assert cursor.fetchone()[0] == 3, "three orders to recompute before the fold"
    fold = services.overlay_fold()
    assert (fold.outcome, fold.orders, fold.changes, fold.overlay_orders) == ("ok", 3, 3, 3)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM reporting_pending_changes")
        assert cursor.fetchone()[0] == 0, "nothing left to recompute"
    assert_exact("after a fold")
    change([3, 4])
    assert selectors.freshness().changes_since == 5, "folded and not yet folded changes both count"
    assert_exact("overlay and tail")
    fold = services.overlay_fold()
    assert (fold.orders, fold.overlay_orders) == (2, 4), "order 3 was in the overlay already"
    fresh = selectors.freshness()
    assert fresh.overlay_orders == 4 and fresh.folded_at is not None
    assert fresh.snapshot_at is not None and fresh.folded_at > fresh.snapshot_at
    assert_exact("after the second fold")


def test_a_refresh_starts_a_new_generation_and_the_next_fold_deletes_the_old_one():
    seeded()
    change([1, 2])
    services.overlay_fold()
    old = Fold.objects.get().generation
    change([5])  # in the tail when the refresh comes
    assert services.views_refresh().outcome == RefreshOutcome.OK
    assert_exact("new views, old overlay left behind")
    assert selectors.freshness().overlay_orders == 0
    change([6])
    fold = services.overlay_fold()
    assert fold.generation != old and fold.orders == 1, "only what changed since the refresh"
    assert not OverlayOrder.objects.filter(generation=old).exists()
    assert list(Fold.objects.values_list("generation", flat=True)) == [fold.generation]
    assert_exact("after the new generation's fold")


def test_a_fold_reads_what_changed_not_the_whole_overlay():
    """No statement of a fold scans an overlay table: its cost follows the orders changed.

    The overlay grows to REPORTING_COMPACT_OVERLAY_ORDERS orders between refreshes;
    a fold that read all of it (say, to find an old generation to delete) would
    cost what the overlay holds on every run.
    """
    seeded()
    change(range(1, 151))
    assert services.overlay_fold().overlay_orders == 150
    change([1, 2])
    with raw_connect() as conn:
        # Without seq scans, only a statement that has no index to use makes one.
        conn.execute("SET enable_seqscan = off")
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        conn.execute("LOCK TABLE reporting_fold IN EXCLUSIVE MODE")
        assert conn.execute("SELECT orders, outcome FROM reporting_overlay_fold()").fetchone() == (2, "ok")
        scans = conn.execute(
            "SELECT relname, seq_scan FROM pg_stat_xact_user_tables "
            "WHERE relname LIKE 'reporting\\_overlay%' AND seq_scan > 0"
        ).fetchall()
        conn.execute("COMMIT")
    assert scans == []
    assert_exact("after the fold")


def _overlay_rows_read(conn) -> int:
    """Rows this transaction read from the overlay tables, by any scan."""
    return conn.execute(
        "SELECT coalesce(sum(coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0)), 0) "
        "FROM pg_stat_xact_user_tables WHERE relname LIKE 'reporting\\_overlay%'"
    ).fetchone()[0]


def test_a_fold_reads_what_changed_even_when_the_statistics_say_the_overlay_is_empty():
    """Right after a compaction, the statistics say the new generation is empty while it grows.

    A fold planned on them read every overlay row of the generation to find the
    few it folds (350 ms a fold at 10 M orders); it must read what it folds.
    """
    seeded(1000)
    change(range(1, 801), status="complete")
    change(range(1, 801), status="cancelled", seconds=2)
    assert services.overlay_fold().overlay_orders == 800
    with connection.cursor() as cursor:
        for table in ("reporting_overlayorder", "reporting_overlaytransition"):
            cursor.execute(f"ANALYZE {table}")
    # A compaction: a new generation, which the statistics have never seen...
    assert services.views_refresh().outcome == RefreshOutcome.OK
    change([1], status="pending", seconds=3)
    services.overlay_fold()
    # ...and grows.
    change(range(2, 801), status="pending", seconds=4)
    change(range(2, 801), status="complete", seconds=5)
    assert services.overlay_fold().overlay_orders == 800
    change([5, 6], status="cancelled", seconds=6)
    with raw_connect() as conn:
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        conn.execute("LOCK TABLE reporting_fold IN EXCLUSIVE MODE")
        assert conn.execute("SELECT orders, outcome FROM reporting_overlay_fold()").fetchone() == (2, "ok")
        read = _overlay_rows_read(conn)
        conn.execute("COMMIT")
    assert read < 100, f"a fold of 2 orders read {read} overlay rows"
    assert_exact("after the fold")


def _change_log_rows_read(conn) -> int:
    """Rows this transaction read from the change log, by any scan."""
    return conn.execute(
        "SELECT coalesce(sum(coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0)), 0) "
        "FROM pg_stat_xact_user_tables WHERE relname = 'reporting_orderchange'"
    ).fetchone()[0]


def test_the_tail_is_found_without_the_entries_that_a_long_transaction_holds_back():
    """A transaction open for minutes (a compaction at 10 M orders) holds back the xmin of every
    snapshot taken meanwhile. Reads, the freshness figures and folds must still find the tail by
    what their snapshot did not see, not go through every entry written since it began."""
    seeded()
    with raw_connect(autocommit=False) as compaction:
        compaction.execute("SELECT pg_current_xact_id()")  # open, with a transaction id
        change(range(1, 101))
        with connection.cursor() as cursor:
            # What a busy shop writes while a compaction runs (entries of orders that
            # exist, folded below like any), in numbers that make plans use the index.
            cursor.execute(
                "INSERT INTO reporting_orderchange (order_ids, source) "
                "SELECT ARRAY[i % 100 + 1]::bigint[], 'status_insert' FROM generate_series(1, 20000) AS i"
            )
            cursor.execute("ANALYZE reporting_orderchange")
        services.overlay_fold()
        change([5], seconds=400)
        with raw_connect() as conn:
            # Whether the change log is read by its index is the planner's choice (by
            # its size and statistics); what is tested here is that the index ranges
            # the reads ask for leave out what the long transaction holds back.
            conn.execute("SET enable_seqscan = off")
            conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
            tail = conn.execute("SELECT count(*) FROM reporting_pending_changes").fetchone()[0]
            figures = conn.execute(REALTIME_FRESHNESS_SQL).fetchone()
            conn.execute(in_schema("SELECT changes_since FROM reporting.freshness")).fetchone()
            read_by_reads = _change_log_rows_read(conn)
            conn.execute("LOCK TABLE reporting_fold IN EXCLUSIVE MODE")
            folded = conn.execute("SELECT orders, changes, outcome FROM reporting_overlay_fold()").fetchone()
            read_by_fold = _change_log_rows_read(conn) - read_by_reads
            conn.execute("COMMIT")
        compaction.rollback()
    assert (tail, figures[3], folded) == (1, 1, (1, 1, "ok"))
    assert read_by_reads < 30, f"the reads went through {read_by_reads} change-log rows for a tail of one"
    assert read_by_fold < 30, f"the fold went through {read_by_fold} change-log rows for a tail of one"
    assert_exact("after the fold")


def test_two_folds_at_once_one_waits_its_turn_or_skips():
    seeded()
    change([1])
    with raw_connect() as other, other.transaction():
        other.execute("LOCK TABLE reporting_fold IN EXCLUSIVE MODE")
        assert services.overlay_fold().outcome == "skipped"
    assert services.overlay_fold().outcome == "ok"
    assert_exact("after the skipped fold")


def test_a_fold_waits_for_other_locks_and_skips_only_for_another_fold():
    seeded()
    change([1])
    with raw_connect() as other:
        other.execute("BEGIN")
        other.execute("LOCK TABLE reporting_overlaycount IN EXCLUSIVE MODE")
        timer = threading.Timer(0.6, other.execute, ["COMMIT"])
        timer.start()
        try:
            assert services.overlay_fold().outcome == "ok", (
                "waited 0.6 s for the lock, longer than the fold lock"
            )
        finally:
            timer.join()
    assert_exact("after the fold that waited")


def test_a_fold_killed_before_its_commit_leaves_the_previous_one_and_exact_reads():
    seeded()
    change([1, 2])
    services.overlay_fold()
    before = list(Fold.objects.values_list("snapshot", "orders"))
    change([2, 3, 4], status="pending", seconds=2)
    victim = raw_connect(autocommit=False)
    victim.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
    victim.execute("LOCK TABLE reporting_fold IN EXCLUSIVE MODE")
    assert victim.execute("SELECT outcome FROM reporting_overlay_fold()").fetchone()[0] == "ok"
    pid = victim.info.backend_pid
    with raw_connect() as admin:
        admin.execute("SELECT pg_terminate_backend(%s, 5000)", [pid])
    with pytest.raises(psycopg.OperationalError):
        victim.commit()
    victim.close()
    assert list(Fold.objects.values_list("snapshot", "orders")) == before, "nothing of it was kept"
    assert_exact("after the killed fold")
    assert services.overlay_fold().orders == 3
    assert_exact("after the next fold")


def test_the_fold_refuses_to_run_without_its_lock_or_snapshot():
    seeded()
    with raw_connect(autocommit=False) as conn:
        with pytest.raises(psycopg.errors.RaiseException, match="REPEATABLE READ"):
            conn.execute("SELECT reporting_overlay_fold()")
        conn.rollback()
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        with pytest.raises(psycopg.errors.RaiseException, match="LOCK TABLE reporting_fold"):
            conn.execute("SELECT reporting_overlay_fold()")
        conn.rollback()


def test_after_a_truncate_folds_wait_for_the_refresh_and_reads_recompute_everything():
    seeded(50)
    change([1])
    services.overlay_fold()
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE reporting_example_orderstatus")
    change_rows = services.overlay_fold()
    assert change_rows.outcome == "needs a refresh"
    assert_exact("after the truncate")
    change([3, 4], status="pending")
    change([5])
    assert_exact("after the truncate, with new history")
    asked: list[str] = []
    FoldJob(asked.append)()
    assert asked and "TRUNCATE" in asked[0]
    assert services.views_refresh().outcome == RefreshOutcome.OK
    assert services.overlay_fold().outcome == "ok"
    assert_exact("after the refresh")


def test_an_overlay_past_its_limit_asks_for_a_refresh_and_fails_the_status_check(settings):
    seeded()
    settings.REPORTING_COMPACT_OVERLAY_ORDERS = 2
    change([1, 2])
    asked: list[str] = []
    FoldJob(asked.append)()
    assert asked and "2 orders (limit 2)" in asked[0]
    call_command("reporting_status")  # at the limit: the scheduler refreshes, nothing is wrong yet
    change([3, 4, 5])
    services.overlay_fold()
    with pytest.raises(CommandError, match="the overlay holds 5 orders, more than twice"):
        call_command("reporting_status")
    settings.REPORTING_COMPACT_OVERLAY_ORDERS = 0
    call_command("reporting_status")
