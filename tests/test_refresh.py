from __future__ import annotations

import datetime as dt
import signal
import subprocess
import sys
import threading
import time
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.db.models import F

from examples.shop import services as shop_services
from reporting import selectors, services
from reporting.choices import RefreshOutcome
from reporting.models import OrderChange, RefreshRun
from reporting.selectors.freshness import LOCK_APPLICATION_NAME
from tests.factories import EPOCH, orders_create, statuses_create
from tests.helpers import raw_connect, subprocess_env, wait_for_sql

pytestmark = pytest.mark.django_db(transaction=True)

MANAGE = str(Path(__file__).resolve().parent.parent / "manage.py")


def view_rows() -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT order_id, status FROM reporting.order_latest_status ORDER BY order_id")
        return cursor.fetchall()


def seed(orders: int) -> None:
    shop_services.orders_seed(orders=orders, seed=1, until=EPOCH)


class TableLock:
    """Hold ACCESS EXCLUSIVE on the source table from another session, so a refresh
    that starts meanwhile is stuck inside its transaction until release()."""

    def __init__(self) -> None:
        self.conn = raw_connect(autocommit=False)
        self.conn.execute("LOCK TABLE reporting_example_orderstatus IN ACCESS EXCLUSIVE MODE")

    def release(self) -> None:
        self.conn.rollback()
        self.conn.close()


def refresh_in_thread(**kwargs) -> tuple[threading.Thread, dict]:
    out: dict = {}

    def run() -> None:
        try:
            out["result"] = services.views_refresh(**kwargs)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, out


def wait_for_refresh_to_wait_on_a_lock(timeout: float = 10) -> None:
    wait_for_sql(
        "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'REFRESH MATERIALIZED VIEW%%' "
        "AND wait_event_type = 'Lock'",
        what="the refresh to wait on the table lock",
        timeout=timeout,
    )


def test_the_first_refresh_of_an_unpopulated_view_works():
    seed(50)
    with connection.cursor() as cursor:
        cursor.execute("REFRESH MATERIALIZED VIEW reporting.order_latest_status WITH NO DATA")
    result = services.views_refresh(concurrently=True)
    assert result.outcome == RefreshOutcome.OK, result.error
    assert result.rows == 50
    assert len(view_rows()) == 50


def test_an_empty_view_is_refreshed_without_waiting_for_a_reader_in_an_open_transaction(settings):
    """A shop with no status change yet: the transition views are populated but empty.
    A BI session reading one in an open transaction must not hold up the refresh
    (a plain refresh's ACCESS EXCLUSIVE would wait for it, and every reader after
    it would queue behind that wait)."""
    statuses_create([(order, EPOCH, "pending") for order in orders_create(30)])
    assert services.views_refresh(force=True).outcome == RefreshOutcome.OK
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM reporting.order_transitions_daily")
        assert cursor.fetchone()[0] == 0, "no status change yet: the transition views are empty"
    # Failing within a second rather than the default 30 s, if it waited at all.
    settings.REPORTING_REFRESH_LOCK_TIMEOUT = 1
    with raw_connect(autocommit=False) as bi_session:
        bi_session.execute("SELECT * FROM reporting.order_transitions_daily_live").fetchall()
        (order,) = orders_create(1)
        statuses_create([(order, EPOCH, "pending"), (order, EPOCH + dt.timedelta(hours=1), "complete")])
        result = services.views_refresh()
        assert result.outcome == RefreshOutcome.OK, result.error
        # The reader's transaction is still open, and still reads.
        rows = bi_session.execute("SELECT count(*) FROM reporting.order_transitions_daily").fetchone()
        bi_session.rollback()
    assert rows[0] == 1, "the refreshed view, read in the same open transaction"


def test_a_plain_refresh_waiting_for_its_lock_lets_other_readers_through(settings):
    """A never-populated view needs a plain refresh. While a session holds the view,
    the refresh tries for its lock in short waits: a reader that comes meanwhile is
    not queued behind it for the whole lock timeout, and the refresh succeeds once
    the holder is gone."""
    seed(40)
    services.views_refresh(force=True)
    with connection.cursor() as cursor:
        cursor.execute("REFRESH MATERIALIZED VIEW reporting.order_status_counts WITH NO DATA")
    settings.REPORTING_REFRESH_LOCK_TIMEOUT = 600
    # A read of a never-populated view fails (and an error releases the locks),
    # but a plan of one holds its lock until the transaction ends.
    holder = raw_connect(autocommit=False)
    holder.execute("EXPLAIN SELECT * FROM reporting.order_status_counts")
    thread, out = refresh_in_thread(force=True)
    try:
        wait_for_refresh_to_wait_on_a_lock()
        with raw_connect() as reader:
            # Without short tries this waits behind the refresh's request until it
            # gives up, ten minutes from now.
            reader.execute("SET lock_timeout = '10s'")
            reader.execute("EXPLAIN SELECT * FROM reporting.order_status_counts")
        assert thread.is_alive(), "the refresh is still waiting for the holder"
    finally:
        holder.rollback()
        holder.close()
        thread.join(60)
    assert out["result"].outcome == RefreshOutcome.OK, out["result"].error
    with connection.cursor() as cursor:
        cursor.execute("SELECT sum(orders) FROM reporting.order_status_counts")
        assert cursor.fetchone()[0] == 40


def test_a_second_refresher_is_skipped_at_once_instead_of_queueing():
    seed(100)
    services.views_refresh(force=True)
    lock = TableLock()
    first, out = refresh_in_thread(force=True)
    try:
        wait_for_refresh_to_wait_on_a_lock()
        started = time.monotonic()
        second = services.views_refresh(force=True)
        elapsed = time.monotonic() - started
        assert second.outcome == RefreshOutcome.SKIPPED
        assert first.is_alive(), "the first refresh must still be running when the second gives up"
    finally:
        lock.release()
        first.join(30)
    assert out["result"].outcome == RefreshOutcome.OK
    outcomes = list(RefreshRun.objects.order_by("id").values_list("outcome", flat=True))
    assert outcomes[-2:] in (["ok", "skipped"], ["skipped", "ok"]), outcomes
    assert RefreshRun.objects.get(pk=second.id).outcome == "skipped"
    # "At once": it did not wait for the first, which was blocked all along.
    assert elapsed < first_refresh_duration(out["result"].id)


def first_refresh_duration(run_id: int) -> float:
    duration = RefreshRun.objects.get(pk=run_id).duration
    assert duration is not None
    return duration.total_seconds()


def test_two_refreshes_started_together_run_once():
    seed(20_000)
    services.views_refresh(force=True)
    barrier = threading.Barrier(2)
    results = []

    def run() -> None:
        try:
            barrier.wait()
            results.append(services.views_refresh(force=True).outcome)
        finally:
            connection.close()

    # Hold the source table so that neither can finish before the other has tried.
    lock = TableLock()
    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        deadline = time.monotonic() + 10
        while not results and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        lock.release()
        for t in threads:
            t.join(30)
    assert sorted(results) == ["ok", "skipped"], results


@pytest.mark.parametrize("concurrently", [True, False])
def test_readers_are_not_blocked_by_a_concurrent_refresh(concurrently):
    seed(200)
    services.views_refresh(force=True)
    lock = TableLock()
    thread, out = refresh_in_thread(force=True, concurrently=concurrently)
    try:
        wait_for_refresh_to_wait_on_a_lock()
        with raw_connect() as reader:
            reader.execute("SET lock_timeout = '200ms'")
            if concurrently:
                count = reader.execute("SELECT count(*) FROM reporting.order_latest_status").fetchone()[0]
                assert count == 200
            else:
                # The contrast: a plain refresh locks every reader out while it runs
                # (in short tries while it waits: see the test of those below).
                wait_for_sql(
                    "SELECT EXISTS (SELECT FROM pg_locks WHERE granted AND mode = 'AccessExclusiveLock' "
                    "AND relation = 'reporting.order_latest_status'::regclass)",
                    what="the plain refresh to hold ACCESS EXCLUSIVE on the view",
                )
    finally:
        lock.release()
        thread.join(30)
    assert out["result"].outcome == RefreshOutcome.OK


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("REPORTING_REFRESH_LOCK_TIMEOUT", "lock timeout"),
        ("REPORTING_REFRESH_STATEMENT_TIMEOUT", "statement timeout"),
    ],
)
def test_a_failed_refresh_is_logged_and_the_previous_data_is_still_served(settings, setting, message):
    seed(300)
    services.views_refresh(force=True)
    before = view_rows()
    (order,) = orders_create(1)
    statuses_create([(order, EPOCH, "cancelled")])
    setattr(settings, setting, 0.1)
    lock = TableLock()
    try:
        result = services.views_refresh()
    finally:
        lock.release()
    assert result.outcome == RefreshOutcome.FAILED
    assert message in result.error
    run = RefreshRun.objects.get(pk=result.id)
    assert (run.outcome, run.snapshot_at, run.finished is not None) == ("failed", None, True)
    assert message in run.error
    assert view_rows() == before, "a failed refresh must leave the previous contents"
    assert selectors.freshness().changes_since == 2, "the new order and its status are still pending"


def test_unchanged_when_nothing_changed_and_any_change_makes_it_run():
    seed(50)
    assert services.views_refresh().outcome == RefreshOutcome.OK
    assert services.views_refresh().outcome == RefreshOutcome.UNCHANGED
    assert services.views_refresh(force=True).outcome == RefreshOutcome.OK

    (order,) = orders_create(1)
    assert services.views_refresh().outcome == RefreshOutcome.OK, "a new order (counts of none)"
    statuses_create([(order, EPOCH, "pending")])
    result = services.views_refresh()
    assert (result.outcome, result.changes_absorbed) == (RefreshOutcome.OK, 1), "insert"
    assert services.views_refresh().outcome == RefreshOutcome.UNCHANGED

    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE reporting_example_orderstatus SET status = 'complete' WHERE order_id = %s", [order]
        )
    assert services.views_refresh().outcome == RefreshOutcome.OK, "update"
    assert dict(view_rows())[order] == "complete"
    assert services.views_refresh().outcome == RefreshOutcome.UNCHANGED

    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM reporting_example_orderstatus WHERE order_id = %s", [order])
    assert services.views_refresh().outcome == RefreshOutcome.OK, "delete"
    assert order not in dict(view_rows())
    assert services.views_refresh().outcome == RefreshOutcome.UNCHANGED
    assert not OrderChange.objects.exists(), "absorbed entries are pruned"


def test_a_bulk_insert_logs_one_entry_for_the_statement_with_every_order():
    order_ids = orders_create(3)
    services.views_refresh(force=True)
    statuses_create([(o, EPOCH, s) for o in order_ids for s in ("pending", "complete")])
    entries = list(OrderChange.objects.values_list("order_ids", "source"))
    assert len(entries) == 1, entries
    assert sorted(entries[0][0] or []) == sorted(order_ids * 2)
    assert entries[0][1] == "status_insert"
    result = services.views_refresh()
    assert result.changes_absorbed == 6, "changes are rows written"


def test_writers_that_commit_out_of_order_are_attributed_to_the_right_side_of_the_snapshot():
    early_order, late_order = orders_create(2)
    services.views_refresh(force=True)

    # Writer 1 starts first and takes the lower transaction id, but commits only
    # after the refresh has taken its snapshot. Writer 2 starts later and commits before.
    w1 = raw_connect(autocommit=False)
    w2 = raw_connect(autocommit=False)
    try:
        xid1 = int(w1.execute("SELECT pg_current_xact_id()::text").fetchone()[0])
        w1.execute(
            "INSERT INTO reporting_example_orderstatus (order_id, created, status) VALUES (%s, "
            "now(), 'cancelled')",
            [early_order],
        )
        xid2 = int(w2.execute("SELECT pg_current_xact_id()::text").fetchone()[0])
        w2.execute(
            "INSERT INTO reporting_example_orderstatus (order_id, created, status) VALUES (%s, "
            "now(), 'complete')",
            [late_order],
        )
        w2.commit()
        assert xid1 < xid2

        result = services.views_refresh()
        assert result.outcome == RefreshOutcome.OK
        assert result.changes_absorbed == 1, "only writer 2 was committed at the snapshot"
        w1.commit()
    finally:
        w1.close()
        w2.close()

    assert dict(view_rows()) == {late_order: "complete"}
    assert list(OrderChange.objects.values_list("order_ids", flat=True)) == [[early_order]], (
        "writer 2's entry is absorbed and pruned; writer 1's waits for the next refresh"
    )
    assert selectors.freshness().changes_since == 1
    result = services.views_refresh()
    assert (result.outcome, result.changes_absorbed) == (RefreshOutcome.OK, 1)
    assert dict(view_rows()) == {early_order: "cancelled", late_order: "complete"}
    assert services.views_refresh().outcome == RefreshOutcome.UNCHANGED


def test_freshness_reports_the_snapshot_time_and_changes_since():
    assert selectors.freshness().as_of is None
    seed(10)
    before = selectors.freshness().checked_at
    result = services.views_refresh()
    fresh = selectors.freshness()
    assert fresh.as_of is not None
    assert fresh.as_of == result.snapshot_at
    assert before <= fresh.as_of <= fresh.checked_at
    assert fresh.changes_since == 0
    assert fresh.age is not None and fresh.age.total_seconds() >= 0
    assert [r.outcome for r in fresh.last_runs][:1] == ["ok"]
    statuses_create([(1, EPOCH, "cancelled"), (2, EPOCH, "cancelled")])
    assert selectors.freshness().changes_since == 2


def test_the_service_refuses_to_run_inside_a_transaction():
    with transaction.atomic(), pytest.raises(RuntimeError, match="autocommit"):
        services.views_refresh()


def test_the_change_log_stores_order_ids_uncompressed():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT attstorage FROM pg_attribute "
            "WHERE attrelid = 'reporting_orderchange'::regclass AND attname = 'order_ids'"
        )
        assert cursor.fetchone() == ("e",), "EXTERNAL: out of line, never compressed"


# --- The refresh lock, dead runs, and freshness on a quiet shop --------------------------------------------


class RefreshLockHolder:
    """Hold the refresh lock from another session, as a running refresh would."""

    def __init__(self) -> None:
        self.conn = raw_connect(autocommit=False)
        self.pid = self.conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        self.conn.execute("LOCK TABLE reporting_refreshlock IN EXCLUSIVE MODE")

    def release(self) -> None:
        self.conn.rollback()
        self.conn.close()


def test_a_refresh_that_cannot_run_says_who_holds_the_lock_and_the_command_fails():
    seed(20)
    services.views_refresh()
    holder = RefreshLockHolder()
    try:
        result = services.views_refresh(force=True)
        assert result.outcome == RefreshOutcome.SKIPPED
        assert f"held by pid {holder.pid}" in result.error
        assert RefreshRun.objects.get(pk=result.id).error == result.error
        with pytest.raises(
            CommandError, match=f"refresh skipped: the refresh lock is held by pid {holder.pid}"
        ):
            call_command("refresh_views", stdout=StringIO())
        out = StringIO()
        call_command("reporting_status", stdout=out)
        assert f"refresh lock held by pid {holder.pid} (role " in out.getvalue()
    finally:
        holder.release()
    assert services.views_refresh(force=True).outcome == RefreshOutcome.OK
    out = StringIO()
    call_command("reporting_status", stdout=out)
    assert "refresh lock held" not in out.getvalue()


@pytest.mark.slow
def test_a_refresh_killed_midway_is_marked_abandoned_by_the_next_run():
    seed(50)
    services.views_refresh()
    statuses_create([(1, EPOCH, "cancelled")])
    lock = TableLock()  # the killed refresh waits on it, inside its transaction
    proc = subprocess.Popen(
        [sys.executable, MANAGE, "refresh_views"],
        env=subprocess_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_refresh_to_wait_on_a_lock(timeout=60)
        running = RefreshRun.objects.get(outcome=RefreshOutcome.RUNNING)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        lock.release()
    deadline = time.monotonic() + 30
    while RefreshLockHolderExists() and time.monotonic() < deadline:
        time.sleep(0.05)  # the server notices the dead client and drops its lock
    result = services.views_refresh()
    assert result.outcome == RefreshOutcome.OK, result.error
    running.refresh_from_db()
    assert running.outcome == RefreshOutcome.ABANDONED
    assert "stopped before it recorded an outcome" in running.error
    assert running.finished is not None
    assert not RefreshRun.objects.filter(outcome=RefreshOutcome.RUNNING).exists()
    assert dict(view_rows())[1] == "cancelled", "the next run did the work"


def RefreshLockHolderExists() -> bool:
    return selectors.refresh_lock_holder() is not None


def test_a_quiet_shop_stays_fresh_the_checks_that_found_nothing_move_as_of():
    seed(30)
    first = services.views_refresh()
    # As if the refresh had been an hour ago and nothing had been written since.
    RefreshRun.objects.filter(pk=first.id).update(snapshot_at=F("snapshot_at") - dt.timedelta(hours=1))
    stale = selectors.freshness()
    assert stale.age is not None and stale.age > dt.timedelta(minutes=59)
    check = services.views_refresh()
    assert check.outcome == RefreshOutcome.UNCHANGED
    fresh = selectors.freshness()
    assert check.snapshot_at is not None and first.snapshot_at is not None
    assert fresh.as_of == check.snapshot_at, "as of the check that found nothing changed"
    assert fresh.snapshot_at == first.snapshot_at - dt.timedelta(hours=1), "the refresh's own time is kept"
    assert fresh.age is not None and fresh.age < dt.timedelta(minutes=1)
    call_command("reporting_status", "--max-age", "60", stdout=StringIO())
    read = selectors.order_status_counts(strategy="snapshot").freshness
    assert read.as_of == check.snapshot_at

    # Honest: a change committed before a check means no confirmation...
    statuses_create([(1, EPOCH, "cancelled")])
    assert selectors.freshness().as_of == check.snapshot_at
    assert selectors.freshness().changes_since == 1
    # ...until a refresh takes it in.
    assert services.views_refresh().outcome == RefreshOutcome.OK
    refreshed = selectors.freshness().as_of
    assert refreshed is not None and refreshed > check.snapshot_at


def snapshot_state() -> tuple:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT generation, snapshot_at, confirmed_at, as_of FROM public.reporting_snapshot_state"
        )
        return cursor.fetchone()


def test_a_check_confirms_only_the_refresh_before_it_not_the_next_one():
    """confirmed_at is the latest "unchanged" check since the latest "ok" refresh: an
    "ok" that follows a check starts with no confirmation of its own."""
    seed(20)
    first = services.views_refresh()
    check = services.views_refresh()
    assert (first.outcome, check.outcome) == (RefreshOutcome.OK, RefreshOutcome.UNCHANGED)
    assert snapshot_state() == (first.id, first.snapshot_at, check.snapshot_at, check.snapshot_at)

    statuses_create([(1, EPOCH, "cancelled")])
    second = services.views_refresh()
    assert second.outcome == RefreshOutcome.OK
    # The earlier check confirmed the previous refresh, not this one.
    assert snapshot_state() == (second.id, second.snapshot_at, None, second.snapshot_at)
    with connection.cursor() as cursor:
        cursor.execute("SELECT confirmed_at, as_of FROM reporting.freshness")
        assert cursor.fetchone() == (None, second.snapshot_at)

    again = services.views_refresh()
    assert again.outcome == RefreshOutcome.UNCHANGED
    assert snapshot_state() == (second.id, second.snapshot_at, again.snapshot_at, again.snapshot_at)


def test_a_refresh_absorbs_exactly_what_its_snapshot_saw_while_it_waited_for_a_lock():
    """A deterministic race: changes committed while the refresh is blocked after its snapshot.

    The refresh takes its snapshot, then waits for a lock on the view that another
    session holds. Meanwhile a new order and a status change commit. They must not
    be in the views, must count as changes since, and real-time reads must see them.
    """
    seed(200)
    services.views_refresh()
    statuses_create([(2, EPOCH, "complete")])  # something to refresh
    blocker = raw_connect(autocommit=False)
    # ANALYZE in a transaction holds SHARE UPDATE EXCLUSIVE on the view until it
    # ends: the refresh's CONCURRENTLY (EXCLUSIVE) waits, readers and writers do not.
    blocker.execute("ANALYZE reporting.order_latest_status")
    thread, out = refresh_in_thread()
    try:
        wait_for_refresh_to_wait_on_a_lock()
        with raw_connect() as writer:
            committed_at = writer.execute("SELECT clock_timestamp()").fetchone()[0]
            new_order = writer.execute(
                "INSERT INTO reporting_example_order (created) VALUES (now()) RETURNING id"
            ).fetchone()[0]
            writer.execute(
                "INSERT INTO reporting_example_orderstatus (order_id, created, status) VALUES (%s, "
                "now(), 'pending')",
                [new_order],
            )
            cancellation = writer.execute(
                "INSERT INTO reporting_example_orderstatus (order_id, created, status) "
                "VALUES (1, now() + interval '1 day', 'cancelled') RETURNING id"
            ).fetchone()[0]
    finally:
        blocker.rollback()
        blocker.close()
        thread.join(60)
    result = out["result"]
    assert result.outcome == RefreshOutcome.OK, result.error
    assert result.snapshot_at is not None and result.snapshot_at < committed_at, (
        "as_of is the snapshot's time, taken before the wait"
    )
    assert new_order not in dict(view_rows()), "taken after the snapshot: not in the view"
    with connection.cursor() as cursor:
        cursor.execute("SELECT status_id FROM reporting.order_latest_status WHERE order_id = 1")
        assert cursor.fetchone() != (cancellation,), "committed after the snapshot: not in the view"
    assert selectors.freshness().changes_since == 3, "the order, its status, the cancellation"
    for strategy_read in (
        lambda s: selectors.order_status_counts(strategy=s).as_dict(),
        lambda s: selectors.order_daily_counts(days=3660, strategy=s).series,
        lambda s: list(selectors.order_iter_by_status(status="cancelled", strategy=s)),
        lambda s: list(selectors.order_iter_by_status(status="pending", strategy=s)),
    ):
        assert strategy_read("realtime") == strategy_read("live")


def test_a_refresh_whose_lock_connection_ends_rolls_back_and_is_not_taken_for_dead():
    seed(100)
    services.views_refresh()
    (change,) = statuses_create([(1, EPOCH + dt.timedelta(days=400), "cancelled")])
    lock = TableLock()
    first, first_out = refresh_in_thread()
    second = None
    try:
        wait_for_refresh_to_wait_on_a_lock()
        with raw_connect() as admin:
            ended = admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
                [LOCK_APPLICATION_NAME],
            ).fetchall()
        assert ended == [(True,)], "one refresh lock connection"
        running = RefreshRun.objects.get(outcome=RefreshOutcome.RUNNING)
        # A second refresh gets the lock now, and marks the first abandoned: it can no
        # longer commit. Its process is alive: it will find out and say so.
        second, second_out = refresh_in_thread()
        deadline = time.monotonic() + 10
        while not RefreshRun.objects.filter(pk=running.pk, outcome=RefreshOutcome.ABANDONED).exists():
            assert time.monotonic() < deadline, "the second refresh never took over"
            time.sleep(0.02)
        assert "still running" in RefreshRun.objects.get(pk=running.pk).error
    finally:
        lock.release()
        first.join(60)
        if second is not None:
            second.join(60)
    assert first_out["result"].outcome == RefreshOutcome.FAILED
    assert "the refresh lock was lost" in first_out["result"].error
    assert second_out["result"].outcome == RefreshOutcome.OK, second_out["result"].error
    with connection.cursor() as cursor:
        cursor.execute("SELECT status_id FROM reporting.order_latest_status WHERE order_id = 1")
        assert cursor.fetchone() == (change.id,), "the second one did the work"
