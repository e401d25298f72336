"""The exactness audit: it finds drift nobody logged, says so everywhere, has it recomputed, and is
quiet on exact data of any shape."""

from __future__ import annotations

import datetime as dt
import random
import threading
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from hypothesis import given
from hypothesis import settings as hsettings

from reporting import conf, selectors, services
from reporting.choices import AuditOutcome, RefreshOutcome
from reporting.models import AuditRun
from scheduler.runner import AuditJob
from tests.factories import orders_create, statuses_create
from tests.helpers import examples, raw_connect
from tests.sources import (
    KEYS,
    SHAPES,
    T0,
    TICKETS,
    assert_exact,
    parent_keys,
    reset,
    shape_apply,
    shape_declared,
    shape_ops,
)

HISTORY = "reporting_example_orderstatus"


def _counts(strategy: str) -> dict[str, int]:
    return selectors.order_status_counts(strategy=strategy).as_dict()


def _write(cursor, order: int, status: str, hours: float = 1) -> None:
    cursor.execute(
        f"INSERT INTO {HISTORY} (order_id, created, status) VALUES (%s, %s, %s)",  # noqa: S608
        [order, T0 + dt.timedelta(hours=hours), status],
    )


def _unlogged_write(order: int, status: str, hours: float = 1) -> None:
    """A status row the change log never sees: its trigger off for one insert, then on again.

    In one transaction, so that no other session (a scheduler's fold, which mends disabled
    triggers) ever sees the trigger off: only the audit can find this write.
    """
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {HISTORY} DISABLE TRIGGER reporting_history_log_insert")
        _write(cursor, order, status, hours)
        # Django's foreign keys are deferred: checked now, as ALTER TABLE wants no pending events.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(f"ALTER TABLE {HISTORY} ENABLE ALWAYS TRIGGER reporting_history_log_insert")


def _order_in(status: str, index: int = 0) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT order_id FROM reporting.order_latest_status WHERE status = %s ORDER BY order_id "
            "OFFSET %s LIMIT 1",
            [status, index],
        )
        return cursor.fetchone()[0]


@pytest.fixture
def shop(transactional_db):
    """Forty orders with histories of one to three rows (and one without), refreshed."""
    orders = orders_create(41, created=T0)
    rng = random.Random(7)
    rows = []
    for order in orders[:-1]:
        for hours, status in enumerate(rng.sample(["pending", "complete", "cancelled"], rng.randint(1, 3))):
            rows.append((order, T0 + dt.timedelta(minutes=hours * rng.choice([0, 5])), status))
    statuses_create(rows)
    assert services.views_refresh(force=True).outcome == RefreshOutcome.OK
    return orders


@pytest.fixture
def reader(client):
    user = get_user_model().objects.create_superuser("auditor", password="auditor-password-1")
    client.force_login(user)
    return client


def test_exact_data_is_found_exact_with_changes_folded_and_in_the_tail(shop):
    with connection.cursor() as cursor:
        for order in shop[:5]:
            _write(cursor, order, "cancelled", hours=2)
    assert services.overlay_fold().orders == 5
    with connection.cursor() as cursor:
        for order in shop[5:8]:
            _write(cursor, order, "complete", hours=3)  # in the tail
    run = services.exactness_audit(sample=1000)
    assert run.outcome == AuditOutcome.EXACT and run.mismatches == 0, run
    # Every key of the parent (the one without rows too), and the eight changed.
    assert (run.range_keys, run.recent_keys, run.keys_checked) == (41, 8, 41), run
    # The next audit's recent keys: only what its fold had not seen (the tail).
    assert services.exactness_audit(sample=1000).recent_keys == 3
    services.overlay_fold()
    assert services.exactness_audit(sample=1000).recent_keys == 3  # now checked in the overlay
    assert services.exactness_audit(sample=1000).recent_keys == 0


def test_a_small_sample_is_a_range_of_consecutive_keys_wrapping_round(shop):
    ordered = sorted(shop)
    wrapped = 0
    for seed in range(40):
        found = selectors.exactness_check(sample=10, since=None, rng=random.Random(seed))
        keys = [int(key) for key in found.range_keys]
        assert not found.mismatches
        # Consecutive keys from a random start, wrapping round past the last key.
        start = ordered.index(keys[0])
        assert keys == [ordered[(start + i) % len(ordered)] for i in range(10)], (seed, keys)
        wrapped += start > len(ordered) - 10
    assert wrapped, "no start near the end in 40 seeds"


def test_a_planted_drift_is_found_said_everywhere_and_gone_after_the_repair(shop, reader):
    order = _order_in("pending")
    _unlogged_write(order, "cancelled", hours=5)
    services.overlay_fold()
    assert _counts("realtime") != _counts("live")  # the drift: real-time reads are wrong
    assert selectors.change_log_check() == []  # and no trigger says so any more
    requested: list[str] = []
    AuditJob(requested.append)()
    run = selectors.audit_last()
    assert run is not None and run.outcome == AuditOutcome.MISMATCH, run
    assert (run.mismatches, run.mismatched_keys) == (1, [str(order)]), run
    assert requested == ["the audit found 1 key wrong in real-time reads"], requested
    # Said: /readyz, reporting_status, /metrics.
    ready = reader.get("/readyz")
    body = ready.json()
    assert ready.status_code == 503 and body["checks"]["audit"] is False, body
    assert any(p.startswith("audit: 1 order of ") and f"({order})" in p for p in body["problems"]), body
    out = StringIO()
    with pytest.raises(CommandError, match="the latest audit found real-time reads different"):
        call_command("reporting_status", stdout=out)
    assert "audit: 1 order of 41 differed from the history in real-time reads at" in out.getvalue()
    metrics = reader.get("/metrics").content.decode()
    assert "reporting_audit_last_mismatches 1.0" in metrics, metrics
    assert _metric(metrics, "reporting_audit_mismatches_total") >= 1
    assert _metric(metrics, "reporting_audit_keys_checked_total") >= 41
    assert "reporting_audit_last_run_timestamp_seconds" in metrics
    # Repaired: the key was marked changed, so real-time reads are exact at once...
    assert _counts("realtime") == _counts("live")
    assert services.overlay_fold().orders == 1  # ...and the fold recomputes it
    assert _counts("realtime") == _counts("live")
    AuditJob(requested.append)()
    run = selectors.audit_last()
    assert run is not None and run.outcome == AuditOutcome.EXACT and run.keys_checked == 41, run
    body = reader.get("/readyz").json()
    assert body["checks"]["audit"] is True and body["status"] == "ready", body
    out = StringIO()
    call_command("reporting_status", stdout=out)
    assert "audit: exact as of" in out.getvalue() and "41 orders checked" in out.getvalue(), out.getvalue()
    assert "reporting_audit_last_mismatches 0.0" in reader.get("/metrics").content.decode()
    # The refresh it asked for sees a change (not "unchanged") and absorbs it.
    assert services.views_refresh().outcome == RefreshOutcome.OK
    assert _counts("snapshot") == _counts("live")


def _metric(text: str, name: str) -> float:
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name + " "))


def test_drift_written_into_the_overlay_is_found_and_a_refresh_mends_it(shop):
    with connection.cursor() as cursor:
        for order in shop[:4]:
            _write(cursor, order, "complete", hours=2)
    services.overlay_fold()
    assert services.exactness_audit(sample=1000).outcome == AuditOutcome.EXACT
    with connection.cursor() as cursor:
        # A fold that wrote a wrong row (a bug) would look like this.
        cursor.execute(
            "UPDATE reporting_overlayorder SET status = 'pending', status_since = status_created "
            "WHERE order_id = %s",
            [shop[1]],
        )
    assert _counts("realtime") == _counts("live")  # only the rows are wrong, not the counts
    run = services.exactness_audit(sample=1000)
    assert (run.outcome, run.mismatched_keys) == (AuditOutcome.MISMATCH, [str(shop[1])]), run
    services.overlay_fold()
    assert services.exactness_audit(sample=1000).outcome == AuditOutcome.EXACT
    # The counts the bad row never touched: the refresh the scheduler asks for recomputes them.
    assert services.views_refresh().outcome == RefreshOutcome.OK
    assert _counts("realtime") == _counts("live") == _counts("snapshot")
    assert services.exactness_audit(sample=1000).outcome == AuditOutcome.EXACT


def test_keys_deleted_unlogged_are_found_and_logged_deletes_are_exact(shop):
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {HISTORY} WHERE order_id = ANY(%s)", [shop[:3]])  # noqa: S608
        cursor.execute("DELETE FROM reporting_example_order WHERE id = ANY(%s)", [shop[:2]])
    assert services.exactness_audit(sample=1000).outcome == AuditOutcome.EXACT
    services.overlay_fold()
    assert services.exactness_audit(sample=1000).outcome == AuditOutcome.EXACT
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {HISTORY} DISABLE TRIGGER reporting_history_log_delete")
        try:
            cursor.execute(f"DELETE FROM {HISTORY} WHERE order_id = %s", [shop[10]])  # noqa: S608
        finally:
            cursor.execute(f"ALTER TABLE {HISTORY} ENABLE ALWAYS TRIGGER reporting_history_log_delete")
    run = services.exactness_audit(sample=1000)
    assert (run.outcome, run.mismatched_keys) == (AuditOutcome.MISMATCH, [str(shop[10])]), run
    services.overlay_fold()
    assert services.exactness_audit(sample=1000).outcome == AuditOutcome.EXACT
    assert services.views_refresh().outcome == RefreshOutcome.OK
    assert _counts("realtime") == _counts("live")


def test_audits_stay_exact_while_keys_are_written_and_deleted_under_them(shop):
    """Each audit samples and compares in one snapshot: a key written or deleted meanwhile is the same
    on both sides, whether the write is folded, in the tail, or not committed yet."""
    done = threading.Event()
    errors: list[BaseException] = []

    def write_and_delete() -> None:
        rng = random.Random(5)
        kept = [*shop[0:-1:2], shop[-1]]  # never deleted: the foreign key is checked at each commit
        try:
            with raw_connect() as conn:
                doomed = list(shop[1:-1:2])
                for i in range(300):
                    with conn.transaction():
                        for other in rng.sample(kept, 3):
                            conn.execute(
                                f"INSERT INTO {HISTORY} (order_id, created, status) "  # noqa: S608
                                "VALUES (%s, now() - %s * interval '1 minute', %s)",
                                [
                                    other,
                                    rng.choice([0, 0, 90]),
                                    rng.choice(["pending", "complete", "cancelled"]),
                                ],
                            )
                    if i % 10 == 5 and doomed:
                        order = doomed.pop()
                        conn.execute(f"DELETE FROM {HISTORY} WHERE order_id = %s", [order])  # noqa: S608
                        conn.execute("DELETE FROM reporting_example_order WHERE id = %s", [order])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            done.set()

    deleter = threading.Thread(target=write_and_delete)
    deleter.start()
    runs: list[selectors.AuditRunSummary] = []
    while not done.is_set() or len(runs) < 3:
        runs.append(services.exactness_audit(sample=1000))
        if len(runs) % 2:
            services.overlay_fold()
    deleter.join()
    assert not errors, errors
    runs.append(services.exactness_audit(sample=1000))
    assert [run.outcome for run in runs] == [AuditOutcome.EXACT] * len(runs), runs
    assert runs[-1].range_keys == 21  # the orders never deleted
    assert _counts("realtime") == _counts("live")


def test_timestamps_python_cannot_hold_do_not_stop_an_audit(shop):
    """Rows at 'infinity' or in year 10000 are no change of status in any strategy (the history's
    view leaves them out): the audit agrees, logged or not, and a row at 9999-12-29 is one."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {HISTORY} (order_id, created, status) VALUES (%s, 'infinity', 'complete'), "  # noqa: S608
            "(%s, '10000-01-01 00:00:00+00', 'cancelled')",
            [shop[0], shop[1]],
        )
    run = services.exactness_audit(sample=1000)
    assert (run.outcome, run.recent_keys) == (AuditOutcome.EXACT, 2), run
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {HISTORY} DISABLE TRIGGER reporting_history_log_insert")
        cursor.execute(
            f"INSERT INTO {HISTORY} (order_id, created, status) VALUES "  # noqa: S608
            "(%s, 'infinity', 'pending'), (%s, '9999-12-29 23:59:59+00', 'pending')",
            [shop[2], shop[3]],
        )
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(f"ALTER TABLE {HISTORY} ENABLE ALWAYS TRIGGER reporting_history_log_insert")
    found = selectors.exactness_check(sample=1000, since=None)
    assert [(m.key, m.history[2] if m.history else None) for m in found.mismatches] == [
        (str(shop[3]), "9999-12-29 23:59:59+00")
    ], found.mismatches


def test_empty_tables_and_no_refresh_yet(transactional_db):
    run = services.exactness_audit(sample=5)
    # Before the first refresh real-time reads compute every key from the history.
    assert run.outcome == AuditOutcome.RECOMPUTING and run.keys_checked == 0, run
    assert services.views_refresh(force=True).outcome == RefreshOutcome.OK
    run = services.exactness_audit(sample=5)
    assert (run.outcome, run.keys_checked) == (AuditOutcome.EXACT, 0), run
    assert selectors.audit_problem(run) is None


def test_a_huge_sample_checks_everything_once(shop, settings):
    settings.REPORTING_AUDIT_SAMPLE = conf.MAX_AUDIT_SAMPLE
    run = services.exactness_audit()
    assert (run.outcome, run.range_keys, run.keys_checked) == (AuditOutcome.EXACT, 41, 41), run


@pytest.mark.parametrize("value", [0, -1, 10**9, "1e3", "2.5", 2.5, True, "", "٣", "100000000000", None])
def test_a_malformed_sample_setting_is_a_clear_error(settings, value):
    settings.REPORTING_AUDIT_SAMPLE = value
    with pytest.raises(ImproperlyConfigured, match="REPORTING_AUDIT_SAMPLE must be a whole number of keys"):
        conf.audit_sample()


@pytest.mark.parametrize(("value", "expected"), [("250", 250), (" 7 ", 7), (100_000, 100_000)])
def test_a_sample_setting_is_read(settings, value, expected):
    settings.REPORTING_AUDIT_SAMPLE = value
    assert conf.audit_sample() == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("every minute", "must be a number of seconds"),
        ("-1", "must be at least 0 seconds"),
        ("nan", "must be at least 0 seconds"),
        ("inf", "must be at most 86400 seconds"),
        (10**6, "must be at most 86400 seconds"),
    ],
)
def test_a_malformed_interval_is_a_clear_error(settings, value, message):
    settings.REPORTING_AUDIT_INTERVAL = value
    with pytest.raises(ImproperlyConfigured, match=f"REPORTING_AUDIT_INTERVAL {message}"):
        conf.audit_interval()


def test_a_malformed_interval_stops_the_scheduler_at_start(settings):
    from scheduler.runner import SchedulerRunner

    settings.REPORTING_AUDIT_INTERVAL = "every minute"
    with pytest.raises(ImproperlyConfigured, match="REPORTING_AUDIT_INTERVAL must be a number of seconds"):
        SchedulerRunner(startup_refresh=False)
    settings.REPORTING_AUDIT_INTERVAL = 60
    settings.REPORTING_AUDIT_SAMPLE = "lots"
    with pytest.raises(ImproperlyConfigured, match="REPORTING_AUDIT_SAMPLE"):
        SchedulerRunner(startup_refresh=False)


def test_old_runs_are_pruned_the_latest_stays(shop, settings):
    settings.REPORTING_REFRESH_LOG_RETENTION_DAYS = 0
    services.exactness_audit(sample=5)
    last = services.exactness_audit(sample=5)
    assert list(AuditRun.objects.values_list("id", flat=True)) == [last.id]


@pytest.mark.parametrize("name", ["tickets", "desk"])
def test_other_shapes_exact_and_a_drift_found(name, transactional_db, settings):
    """UUID keys without a foreign key (rows of keys that are not there), and integer states."""
    shape = SHAPES[name]
    history = shape.rows_sql.rpartition(" FROM ")[2]
    rng = random.Random(11)
    with shape_declared(shape, settings):
        for _ in range(3):
            ops = [
                ("row", rng.randrange(KEYS), rng.choice([0, 0, 1, 60]), rng.randrange(len(shape.values)))
                for _ in range(25)
            ]
            for op in [*ops, ("fold",), ("row", 0, 90, 0), ("row", 1, 0, 1)]:
                shape_apply(shape, op, has_foreign_key=shape is not TICKETS)
            run = services.exactness_audit(sample=100)
            assert (run.outcome, run.range_keys) == (AuditOutcome.EXACT, len(parent_keys(shape))), run
            assert run.recent_keys > 0
        # A row the change log never sees, for a key that has rows: its latest row changes.
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE {history} DISABLE TRIGGER reporting_history_log_insert")
            cursor.execute(shape.insert_row_sql, [shape.key(2), T0 + dt.timedelta(days=400), shape.values[1]])
            cursor.execute(f"ALTER TABLE {history} ENABLE ALWAYS TRIGGER reporting_history_log_insert")
        services.overlay_fold()
        run = services.exactness_audit(sample=100)
        assert (run.outcome, run.mismatched_keys) == (AuditOutcome.MISMATCH, [str(shape.key(2))]), run
        services.overlay_fold()
        assert services.exactness_audit(sample=100).outcome == AuditOutcome.EXACT
        assert_exact(shape, ("live", "realtime"))
        # Empty: nothing to check, nothing wrong.
        reset(shape)
        run = services.exactness_audit(sample=100)
        assert (run.outcome, run.keys_checked) == (AuditOutcome.EXACT, 0), run


@pytest.mark.parametrize("name", ["tickets", "storefront"])
def test_random_histories_with_ties_backfills_and_deletes_are_found_exact(name, transactional_db, settings):
    """Whatever the writes, folds and compactions, an audit of every key finds nothing: the audit's
    formula and the real-time state's agree wherever the strategies do."""
    shape = SHAPES[name]

    @hsettings(max_examples=examples(6))
    @given(ops=shape_ops(shape))
    def run(ops):
        reset(shape)
        for op in ops:
            shape_apply(shape, op, has_foreign_key=shape is not TICKETS)
        found = services.exactness_audit(sample=100)
        assert found.outcome == AuditOutcome.EXACT, found
        assert found.range_keys == len(parent_keys(shape)), found

    with shape_declared(shape, settings):
        run()


@pytest.mark.slow
def test_run_scheduler_finds_a_planted_drift_has_it_recomputed_and_refreshes(shop, tmp_path):
    from reporting.models import RefreshRun
    from tests.helpers import scheduler_process, subprocess_env, wait_until

    env = subprocess_env() | {
        "REPORTING_REFRESH_INTERVAL": "3600",
        "REPORTING_FOLD_INTERVAL": "0.2",
        "REPORTING_AUDIT_INTERVAL": "0.5",
        "REPORTING_BI_WATCHDOG_INTERVAL": "0",
    }
    order = _order_in("complete")
    with scheduler_process(tmp_path, env):
        # No refresh at start: the overlay carries the views (the first audit is the sign it runs).
        wait_until(lambda: AuditRun.objects.filter(outcome="exact").exists(), timeout=60, what="an audit")
        _unlogged_write(order, "cancelled", hours=6)
        wait_until(
            lambda: AuditRun.objects.filter(outcome="mismatch", mismatched_keys=[str(order)]).exists(),
            timeout=60,
            what="an audit that finds the drift",
        )
        found = AuditRun.objects.get(outcome="mismatch")
        wait_until(
            lambda: RefreshRun.objects.filter(outcome="ok", started__gt=found.started).exists(),
            timeout=60,
            what="the refresh the audit asks for",
        )
        wait_until(
            lambda: AuditRun.objects.filter(outcome="exact", pk__gt=found.pk).exists(),
            timeout=60,
            what="an exact audit after the repair",
        )
    assert AuditRun.objects.filter(outcome="mismatch").count() == 1
    assert _counts("realtime") == _counts("live") == _counts("snapshot")
    output = (tmp_path / "scheduler.log").read_text()
    assert "1 of 41 keys differ from the history in real-time reads; marked changed" in output, output
    assert "Refreshing now: the audit found 1 key wrong in real-time reads" in output, output
