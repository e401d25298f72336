from __future__ import annotations

import logging
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.test import override_settings

from reporting import embedded_db, services
from reporting.models import Fold, RefreshRun
from scheduler.runner import build_trigger
from tests.factories import EPOCH, orders_create, statuses_create
from tests.helpers import MANAGE, raw_connect, scheduler_process, subprocess_env, wait_until

NO_LOGGING = "tests.settings_without_logging"


def restart_database() -> None:
    if embedded_db.server_in_use():
        embedded_db.restart(downtime=2)
    else:
        # An external server cannot be restarted from here: drop every other
        # connection to the test database instead, which the scheduler sees the same way.
        with raw_connect() as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
    connection.close()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_run_scheduler_refreshes_survives_a_database_restart_and_stops_on_sigterm(tmp_path):
    (order,) = orders_create(1)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = subprocess_env() | {
        "REPORTING_REFRESH_INTERVAL": "1",
        "REPORTING_REFRESH_JITTER": "0",
        "REPORTING_SCHEDULER_METRICS_PORT": str(port),
    }
    with scheduler_process(tmp_path, env) as proc:
        wait_until(
            lambda: RefreshRun.objects.exclude(outcome="running").count() >= 2,
            timeout=60,
            what="two refresh runs",
        )
        assert RefreshRun.objects.filter(trigger="startup", outcome="ok").exists()
        assert RefreshRun.objects.filter(trigger="schedule").exists()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
            exposed = response.read().decode()
        assert re.search(r'^reporting_refresh_runs_total\{outcome="ok"\} [1-9]', exposed, re.M), exposed
        assert "reporting_state_age_seconds" in exposed, "the scheduler shows the state too"

        restart_database()
        restarted_at = time.time()
        statuses_create([(order, EPOCH, "cancelled")])
        wait_until(
            lambda: RefreshRun.objects.filter(
                outcome="ok",
                changes_absorbed=1,
                snapshot_at__gt=EPOCH.fromtimestamp(restarted_at, EPOCH.tzinfo),
            ).exists(),
            timeout=60,
            what="a refresh after the restart",
        )
        assert proc.poll() is None, "the scheduler died"
    output = (tmp_path / "scheduler.log").read_text()
    assert "SIGTERM received" in output, output
    assert "Scheduler stopped" in output, output


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_run_scheduler_folds_between_refreshes_and_refreshes_when_the_overlay_is_full(tmp_path):
    orders = orders_create(6)
    env = subprocess_env() | {
        "REPORTING_REFRESH_INTERVAL": "3600",
        "REPORTING_FOLD_INTERVAL": "0.2",
        "REPORTING_COMPACT_OVERLAY_ORDERS": "4",
        "REPORTING_BI_WATCHDOG_INTERVAL": "0",
    }
    with scheduler_process(tmp_path, env):
        wait_until(
            lambda: RefreshRun.objects.filter(outcome="ok").exists(), timeout=60, what="the start-up refresh"
        )
        startup = RefreshRun.objects.get(outcome="ok")
        statuses_create([(orders[0], EPOCH, "cancelled")])
        wait_until(
            lambda: Fold.objects.filter(generation=startup.pk, orders=1).exists(),
            timeout=30,
            what="a fold of the change",
        )
        assert RefreshRun.objects.filter(outcome="ok").count() == 1, "no refresh for one change"
        statuses_create([(order, EPOCH, "complete") for order in orders[1:5]])
        wait_until(
            lambda: RefreshRun.objects.filter(outcome="ok", pk__gt=startup.pk).exists(),
            timeout=60,
            what="a refresh once the overlay held 5 orders",
        )
    output = (tmp_path / "scheduler.log").read_text()
    assert "Refreshing now: the overlay holds 5 orders (limit 4)" in output, output
    assert "Job fold ran" not in output, "folds are not logged one by one"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"REPORTING_REFRESH_CRON": "61 * * * *"}, "REPORTING_REFRESH_CRON '61 * * * *' is not a crontab"),
        ({"REPORTING_REFRESH_CRON": "every minute"}, "is not a crontab expression"),
        ({"REPORTING_REFRESH_INTERVAL": "soon"}, "REPORTING_REFRESH_INTERVAL must be a number"),
        ({"REPORTING_REFRESH_INTERVAL": "0"}, "REPORTING_REFRESH_INTERVAL must be at least"),
        ({"REPORTING_REFRESH_JITTER": "-1"}, "REPORTING_REFRESH_JITTER must be at least"),
    ],
)
def test_a_malformed_schedule_is_refused(overrides, message):
    with (
        override_settings(**overrides),
        pytest.raises(ImproperlyConfigured, match=message.replace("*", r"\*")),
    ):
        build_trigger()


def test_a_malformed_schedule_exits_non_zero_with_one_clear_line():
    env = subprocess_env() | {"REPORTING_REFRESH_CRON": "61 * * * *"}
    proc = subprocess.run(
        [sys.executable, MANAGE, "run_scheduler"], env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines == [
        "CommandError: REPORTING_REFRESH_CRON '61 * * * *' is not a crontab expression: "
        "Error validating expression '61': the last value (61) is higher than the maximum value (59)"
    ]


@override_settings(TIME_ZONE="Europe/Paris", REPORTING_REFRESH_CRON="0 3 * * *")
def test_a_cron_schedule_uses_the_configured_time_zone():
    assert str(build_trigger().timezone) == "Europe/Paris"


@pytest.mark.django_db(transaction=True)
def test_reporting_status_max_age_exit_codes():
    def status(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, MANAGE, "reporting_status", *args],
            env=subprocess_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )

    never = status("--max-age", "60")
    assert never.returncode == 1
    assert "never refreshed" in never.stderr
    services.views_refresh()
    fresh = status("--max-age", "60")
    assert fresh.returncode == 0, fresh.stderr
    clock = r"\d\d:\d\d:\d\d UTC"
    assert re.search(rf"snapshot reads: as of {clock} \(\d+ s ago\); no changes since", fresh.stdout)
    assert re.search(rf"realtime and live reads: exact now \(checked {clock}\)", fresh.stdout)
    time.sleep(1.1)
    stale = status("--max-age", "1")
    assert stale.returncode == 1
    assert "more than 1 s" in stale.stderr
    assert status().returncode == 0


@pytest.mark.django_db(transaction=True)
def test_the_jobs_count_what_they_do_for_the_metrics():
    from prometheus_client import REGISTRY

    from scheduler.runner import RefreshJob

    def ok_runs() -> float:
        return REGISTRY.get_sample_value("reporting_refresh_runs_total", {"outcome": "ok"}) or 0.0

    def durations() -> float:
        return REGISTRY.get_sample_value("reporting_refresh_duration_seconds_count") or 0.0

    before, timed = ok_runs(), durations()
    orders_create(3)
    assert RefreshJob()("manual") == "ok"
    assert ok_runs() == before + 1
    assert durations() == timed + 1
    unchanged = REGISTRY.get_sample_value("reporting_refresh_runs_total", {"outcome": "unchanged"}) or 0.0
    assert RefreshJob()("manual") == "unchanged"
    assert (
        REGISTRY.get_sample_value("reporting_refresh_runs_total", {"outcome": "unchanged"}) == unchanged + 1
    )


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("settings_module", "verbosity", "shown", "hidden"),
    [
        # A project made by startproject has no LOGGING: the refresh must still be told.
        (NO_LOGGING, "1", "INFO scheduler.runner: Job startup-refresh ran: ok", " DEBUG "),
        (NO_LOGGING, "0", None, " INFO "),
        (NO_LOGGING, "2", " DEBUG reporting.services.fold: Fold ", None),
        # This repository's LOGGING routes both loggers: its handler is kept, and no second one added.
        ("demo_project.settings", "1", "INFO scheduler.runner: Job startup-refresh ran: ok", None),
    ],
)
def test_run_scheduler_logs_to_the_console_unless_the_project_routes_its_loggers(
    tmp_path, settings_module, verbosity, shown, hidden
):
    orders_create(2)
    env = subprocess_env() | {"REPORTING_REFRESH_INTERVAL": "3600", "REPORTING_FOLD_INTERVAL": "0.2"}
    log = tmp_path / "scheduler.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, MANAGE, "run_scheduler", "--settings", settings_module, "-v", verbosity],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until(
                lambda: (
                    RefreshRun.objects.filter(trigger="startup").exclude(outcome="running").exists()
                    and Fold.objects.exists()
                ),
                timeout=60,
                what="the start-up refresh and a fold",
            )
            if shown is not None:
                wait_until(lambda: shown in log.read_text(), timeout=30, what=f"{shown!r} in the log")
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=60) == 0, log.read_text()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    output = log.read_text()
    if hidden is not None:
        assert hidden not in output, output
    if verbosity == "1":
        assert output.count("Scheduler stopped") == 1, f"each line once:\n{output}"


def test_a_fold_skipped_while_the_previous_one_runs_is_no_warning_but_other_skips_are(caplog):
    """A long fold made APScheduler warn at every fold interval; other jobs' skips still warn."""
    from types import SimpleNamespace

    from scheduler.runner import SchedulerRunner

    aps_logger = SchedulerRunner(startup_refresh=False).scheduler._logger
    message = 'Execution of job "%s" skipped: maximum number of running instances reached (%d)'
    with caplog.at_level(logging.DEBUG, logger=aps_logger.name):
        aps_logger.warning(message, SimpleNamespace(id="fold"), 1)
        aps_logger.warning(message, SimpleNamespace(id="refresh"), 1)
    assert [record.args[0].id for record in caplog.records] == ["refresh"]


@pytest.mark.django_db(transaction=True)
def test_a_start_does_not_compact_while_the_overlay_carries_the_views(settings):
    """Every run_scheduler start compacted when anything changed since the last refresh
    (3-5 minutes at 10 M orders), though the folds keep the overlay current."""
    from scheduler.runner import RefreshJob

    orders = orders_create(4)
    statuses_create([(order, EPOCH, "pending") for order in orders])
    assert RefreshJob()("startup") == "ok", "no refresh yet: the start refreshes"
    statuses_create([(orders[0], EPOCH, "complete")])
    assert services.overlay_fold().outcome == "ok"
    statuses_create([(orders[1], EPOCH, "cancelled")])  # a tail the next fold takes
    runs = RefreshRun.objects.count()

    assert RefreshJob()("startup") == "not needed"
    assert services.compaction_at_start_reason() is None
    assert RefreshRun.objects.count() == runs, "no refresh was run"
    assert services.views_refresh().outcome == "ok", "a scheduled refresh still compacts"

    # When the overlay cannot carry the views, a start compacts.
    statuses_create([(orders[2], EPOCH, "complete"), (orders[3], EPOCH, "complete")])
    settings.REPORTING_COMPACT_OVERLAY_ORDERS = 2
    assert "REPORTING_COMPACT_OVERLAY_ORDERS 2" in (services.compaction_at_start_reason() or "")
    assert RefreshJob()("startup") == "ok"
    settings.REPORTING_COMPACT_OVERLAY_ORDERS = 0
    settings.REPORTING_FOLD_INTERVAL = 0
    assert "folding is off" in (services.compaction_at_start_reason() or "")
    settings.REPORTING_FOLD_INTERVAL = 0.5
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE reporting_example_orderstatus")
    assert "cannot correct the views" in (services.compaction_at_start_reason() or "")
    assert RefreshJob()("startup") == "ok"
    assert services.compaction_at_start_reason() is None


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_refresh_cancelled_by_sigterm_is_recorded_as_cancelled(tmp_path):
    """The stop cancels a refresh that outlasts the grace period: it rolls back, and
    its run says "cancelled", not "failed" (nothing went wrong)."""
    orders = orders_create(3)
    statuses_create([(order, EPOCH, "pending") for order in orders])
    env = subprocess_env() | {
        "REPORTING_REFRESH_INTERVAL": "3600",
        "REPORTING_SHUTDOWN_GRACE": "0.5",
        "REPORTING_REFRESH_LOCK_TIMEOUT": "600",
        "REPORTING_BI_WATCHDOG_INTERVAL": "0",
    }
    # Holds the history, so the start-up refresh waits inside its transaction.
    holder = raw_connect(autocommit=False)
    holder.execute("LOCK TABLE reporting_example_orderstatus IN ACCESS EXCLUSIVE MODE")
    log = (tmp_path / "scheduler.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, MANAGE, "run_scheduler"], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        wait_until(
            lambda: RefreshRun.objects.filter(trigger="startup", outcome="running").exists(),
            timeout=60,
            what="the start-up refresh to begin",
        )
        with raw_connect() as conn:
            deadline = time.monotonic() + 30
            while not conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'REFRESH MATERIALIZED VIEW%%' "
                "AND wait_event_type = 'Lock'"
            ).fetchone()[0]:
                assert time.monotonic() < deadline, "the refresh never waited on the lock"
                time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        holder.rollback()
        holder.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
    run = RefreshRun.objects.get(trigger="startup")
    output = (tmp_path / "scheduler.log").read_text()
    assert run.outcome == "cancelled", (run.outcome, run.error, output)
    assert "user request" in run.error
    assert not RefreshRun.objects.filter(outcome="failed").exists()
