"""The refresh schedule: a blocking APScheduler 3.x scheduler in a process of its own.

Never started inside web workers or ``AppConfig.ready()``: only
``python manage.py run_scheduler`` runs it. Two schedulers at once are safe:
the refresh service's lock lets one refresh run and records the other as
``skipped``.

Between refreshes it folds the change log into the overlay every
``REPORTING_FOLD_INTERVAL`` seconds (:func:`reporting.services.overlay_fold`), and
refreshes at once when the overlay passes ``REPORTING_COMPACT_OVERLAY_ORDERS`` or a
fold cannot go on. Next to them it runs the BI watchdog (:func:`reporting.services.bi_watchdog_run`)
every ``REPORTING_BI_WATCHDOG_INTERVAL`` seconds, and the exactness audit
(:func:`reporting.services.exactness_audit`) every ``REPORTING_AUDIT_INTERVAL`` seconds.
"""

from __future__ import annotations

__all__ = ["AuditJob", "FoldJob", "RefreshJob", "SchedulerRunner", "WatchdogJob", "build_trigger"]

import logging
import signal
import threading
import time
import zoneinfo
from collections.abc import Callable
from types import FrameType
from typing import Any

from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_EXECUTED,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    JobExecutionEvent,
)
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import DEFAULT_DB_ALIAS, close_old_connections, connection
from django.db import Error as DatabaseError
from django.utils import timezone

from reporting import bi, conf, metrics, services
from reporting.choices import RefreshOutcome, RefreshTrigger

logger = logging.getLogger(__name__)


def build_trigger() -> BaseTrigger:
    """Build the schedule from the settings: a cron expression if set, else the interval.

    Raises:
        ImproperlyConfigured: a malformed interval, jitter or cron expression.
    """
    # APScheduler 3 gives a trigger built by hand the machine's local time zone,
    # not the scheduler's: always pass one.
    tz = zoneinfo.ZoneInfo(settings.TIME_ZONE)
    interval = conf.refresh_interval()
    jitter = conf.refresh_jitter()
    cron = conf.refresh_cron()
    if cron:
        try:
            return CronTrigger.from_crontab(cron, timezone=tz)
        except ValueError as exc:
            raise ImproperlyConfigured(
                f"REPORTING_REFRESH_CRON {cron!r} is not a crontab expression: {exc}"
            ) from None
    if jitter is None:
        jitter = min(10.0, interval / 10)
    return IntervalTrigger(seconds=interval, jitter=jitter or None, timezone=tz)


class RefreshJob:
    """The job the scheduler runs: one refresh, with Django connections closed around it.

    It remembers the backend running a refresh so that a shutdown can cancel it.
    """

    def __init__(self) -> None:
        self.idle = threading.Event()
        self.idle.set()
        self.backend_pid: int | None = None

    def __call__(self, trigger: str) -> str:
        # Jobs run in a thread pool, each thread with its own Django connection:
        # never reuse one that the database may have dropped meanwhile.
        self.idle.clear()
        close_old_connections()
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                self.backend_pid = cursor.fetchone()[0]
            if trigger == RefreshTrigger.STARTUP:
                # The overlay carries the views across a restart; the folds catch up.
                reason = services.compaction_at_start_reason()
                if reason is None:
                    logger.info("No refresh at start: the overlay carries the views, the folds catch up")
                    return "not needed"
                logger.info("Refreshing at start: %s", reason)
            result = services.views_refresh(trigger=trigger)
            metrics.REFRESH_RUNS.labels(result.outcome).inc()
            if result.outcome == RefreshOutcome.OK and result.duration is not None:
                metrics.REFRESH_SECONDS.observe(result.duration.total_seconds())
            if result.outcome == RefreshOutcome.FAILED:
                logger.warning("Refresh %s failed: %s", result.id, result.error)
            return result.outcome
        except DatabaseError as exc:
            # The database is down or restarting: one line, and the next run tries again.
            logger.warning("Refresh not run, the database is unavailable: %s", str(exc).splitlines()[0])
            return "database unavailable"
        finally:
            self.backend_pid = None
            connection.close()
            self.idle.set()


class FoldJob:
    """The fold's job: one fold, on a connection kept open from fold to fold.

    It runs in an executor of its own with one thread, so that thread's Django
    connection serves every fold (a new server process every second would cost
    more than most folds). Asks for a refresh (a compaction) when the overlay
    holds ``REPORTING_COMPACT_OVERLAY_ORDERS`` orders or more, or a fold cannot go
    on (a TRUNCATE, or views rewritten by a plain refresh).
    """

    # A failing fold says so at once and then every minute, not every second.
    WARN_REPEAT = 60.0

    def __init__(self, request_refresh: Callable[[str], None]) -> None:
        self.request_refresh = request_refresh
        self.warned_at: float | None = None

    def __call__(self) -> str:
        # Keeps the connection from fold to fold, but honours CONN_MAX_AGE and health checks.
        close_old_connections()
        try:
            # Writes the change log missed (triggers disabled or not always on) are
            # distrusted first: real-time reads recompute, and a refresh absorbs them.
            missed = services.change_log_repair()
            if missed:
                self.request_refresh("the change log missed writes")
            result = services.overlay_fold()
        except DatabaseError as exc:
            now = time.monotonic()
            if self.warned_at is None or now - self.warned_at >= self.WARN_REPEAT:
                logger.warning("Fold not run: %s", str(exc).splitlines()[0])
                self.warned_at = now
            connection.close()
            return "database unavailable"
        self.warned_at = None
        metrics.FOLD_SECONDS.observe(result.duration.total_seconds())
        metrics.FOLDED_ORDERS.inc(result.orders)
        reason = result.refresh_reason()
        if reason is not None:
            self.request_refresh(reason)
        return f"{result.outcome}: {result.orders} orders"


class WatchdogJob:
    """The BI watchdog's job: one round, with Django connections closed around it."""

    # A watchdog that cannot see says so at start and every ten minutes, not every round.
    BLIND_REPEAT = 600.0

    def __init__(self) -> None:
        self.blind_since: float | None = None

    def __call__(self) -> str:
        close_old_connections()
        try:
            actions = services.bi_watchdog_run()
            for action in actions:
                metrics.WATCHDOG_ACTIONS.labels(action.action).inc()
            self.blind_since = None
            return f"{len(actions)} BI statement(s) or session(s) stopped"
        except bi.WatchdogBlindError as exc:
            now = time.monotonic()
            if self.blind_since is None or now - self.blind_since >= self.BLIND_REPEAT:
                logger.error("%s", exc)
                self.blind_since = now
            return "blind"
        except DatabaseError as exc:
            logger.warning("BI watchdog not run: %s", str(exc).splitlines()[0])
            return "database unavailable"
        finally:
            connection.close()


class AuditJob:
    """The exactness audit's job: one audit, with Django connections closed around it.

    Counts the keys checked and the mismatches (``reporting_audit_*``), and asks for a
    refresh (a full recompute) when keys were found wrong: the audit has already had
    them recomputed, but whatever let them drift may have touched what it did not
    sample.
    """

    def __init__(self, request_refresh: Callable[[str], None]) -> None:
        self.request_refresh = request_refresh

    def __call__(self) -> str:
        close_old_connections()
        try:
            run = services.exactness_audit()
        except DatabaseError as exc:
            logger.warning("Audit not run: %s", str(exc).splitlines()[0])
            return "database unavailable"
        finally:
            connection.close()
        metrics.AUDIT_KEYS_CHECKED.inc(run.keys_checked)
        metrics.AUDIT_MISMATCHES.inc(run.mismatches)
        metrics.AUDIT_SECONDS.observe(run.duration.total_seconds())
        if run.mismatches:
            keys = "1 key" if run.mismatches == 1 else f"{run.mismatches} keys"
            self.request_refresh(f"the audit found {keys} wrong in real-time reads")
        return f"{run.outcome}: {run.keys_checked} keys checked, {run.mismatches} wrong"


class _SkippedFoldFilter(logging.Filter):
    """Drop APScheduler's warning that a fold was skipped because the previous one still runs.

    Folds run every few seconds, so a long one (a large tail after a pause) made
    APScheduler warn at every interval, burying the log; the skip is expected and
    harmless (the next fold takes what this one would have), and ``_on_event``
    notes it at DEBUG. Every other job's skip stays a warning.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        job = record.args[0] if isinstance(record.args, tuple) and record.args else None
        return not (str(record.msg).startswith("Execution of job") and getattr(job, "id", None) == "fold")


# The logger APScheduler's scheduler writes to: under this package's, so that
# run_scheduler's console shows it, with the filter above.
APSCHEDULER_LOGGER = logging.getLogger("scheduler.apscheduler")
APSCHEDULER_LOGGER.addFilter(_SkippedFoldFilter())


class SchedulerRunner:
    """Run the schedule until SIGTERM or SIGINT.

    The first signal stops scheduling and lets a refresh in flight finish for up
    to ``REPORTING_SHUTDOWN_GRACE`` seconds; then (or at a second signal) it is
    cancelled, which rolls it back and leaves the previous data in place.
    """

    def __init__(self, *, startup_refresh: bool = True) -> None:
        if conf.pooled(DEFAULT_DB_ALIAS):
            # Behind a transaction pooler, a stop would cancel the refresh by its
            # server process id, which belongs to whichever client the pooler gave
            # that server session to next; and the refresh log could not name the
            # lock holder. The scheduler is one process: it connects directly.
            raise ImproperlyConfigured(
                "run_scheduler needs a direct connection to PostgreSQL, not a transaction pooler "
                "(DISABLE_SERVER_SIDE_CURSORS is set for the database): start it with a DATABASE_URL "
                "that points at the server itself"
            )
        self.trigger = build_trigger()
        self.grace = conf.shutdown_grace()
        self.watchdog_interval = conf.bi_watchdog_interval()
        # Read by every watchdog round: a bad value stops the start, not a round.
        conf.bi_lockout_terminations(), conf.bi_lockout_window()
        self.fold_interval = conf.fold_interval()
        self.audit_interval = conf.audit_interval()
        if self.audit_interval > 0:
            conf.audit_sample()  # a malformed sample size stops the start, not each audit
        self.compaction_requested_at: float | None = None
        self.metrics_address = conf.scheduler_metrics_address()
        self.startup_refresh = startup_refresh
        self.job = RefreshJob()
        self.stop_requested = threading.Event()
        self.scheduler = BlockingScheduler(
            timezone=zoneinfo.ZoneInfo(settings.TIME_ZONE),
            executors={"default": ThreadPoolExecutor(10), "fold": ThreadPoolExecutor(1)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
            logger=APSCHEDULER_LOGGER,
        )
        self.scheduler.add_listener(
            self._on_event, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR | EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES
        )

    def run(self) -> None:
        self.scheduler.add_job(
            self.job,
            self.trigger,
            args=[RefreshTrigger.SCHEDULE],
            id="refresh",
            name="refresh reporting views",
        )
        if self.fold_interval > 0:
            self.scheduler.add_job(
                FoldJob(self._request_refresh),
                IntervalTrigger(seconds=self.fold_interval, timezone=zoneinfo.ZoneInfo(settings.TIME_ZONE)),
                id="fold",
                name="fold the change log into the overlay",
                executor="fold",
            )
        if self.watchdog_interval > 0:
            self.scheduler.add_job(
                WatchdogJob(),
                IntervalTrigger(
                    seconds=self.watchdog_interval, timezone=zoneinfo.ZoneInfo(settings.TIME_ZONE)
                ),
                id="bi-watchdog",
                name="hold BI sessions to their limits",
            )
        if self.audit_interval > 0:
            self.scheduler.add_job(
                AuditJob(self._request_refresh),
                IntervalTrigger(seconds=self.audit_interval, timezone=zoneinfo.ZoneInfo(settings.TIME_ZONE)),
                id="audit",
                name="audit real-time reads against the history",
            )
        if self.startup_refresh:
            self.scheduler.add_job(
                self.job, "date", run_date=timezone.now(), args=[RefreshTrigger.STARTUP], id="startup-refresh"
            )
        if self.metrics_address is not None:
            if metrics.serve(*self.metrics_address):
                logger.info("Metrics on http://%s:%d/metrics", *self.metrics_address)
            else:
                logger.warning(
                    "REPORTING_SCHEDULER_METRICS_PORT is set, but metrics are not installed; the port "
                    "stays closed: %s",
                    metrics.INSTALL,
                )
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        logger.info("Scheduler started: %s", self.trigger)
        try:
            self.scheduler.start()  # blocks until shutdown
            self._wait_for_job_in_flight()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        logger.info("Scheduler stopped")

    def _request_refresh(self, reason: str) -> None:
        """Run the refresh now, unless one runs or was asked for less than a minute ago."""
        now = time.monotonic()
        if not self.job.idle.is_set() or (
            self.compaction_requested_at is not None and now - self.compaction_requested_at < 60
        ):
            return
        self.compaction_requested_at = now
        logger.info("Refreshing now: %s", reason)
        self.scheduler.modify_job("refresh", next_run_time=timezone.now())

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self.stop_requested.is_set():
            logger.warning("Second %s: cancelling the refresh in flight", signal.Signals(signum).name)
            self._cancel_job_in_flight()
            return
        logger.info("%s received: stopping the scheduler", signal.Signals(signum).name)
        self.stop_requested.set()
        self.scheduler.shutdown(wait=False)

    def _wait_for_job_in_flight(self) -> None:
        if self.job.idle.is_set():
            return
        logger.info("Waiting up to %g s for the refresh in flight", self.grace)
        if not self.job.idle.wait(self.grace):
            self._cancel_job_in_flight()
            self.job.idle.wait(60)

    def _cancel_job_in_flight(self) -> None:
        pid = self.job.backend_pid
        if pid is None:
            return
        try:
            services.refresh_cancel(pid)  # recorded "cancelled", not "failed"
        finally:
            connection.close()

    @staticmethod
    def _on_event(event: Any) -> None:
        if event.code == EVENT_JOB_MISSED:
            logger.warning("Job %s missed its run time %s", event.job_id, event.scheduled_run_time)
        elif event.code == EVENT_JOB_MAX_INSTANCES and event.job_id == "fold":
            logger.debug("A fold is still running at the next one's time; that one is skipped")
        elif event.code == EVENT_JOB_MAX_INSTANCES:
            logger.warning("Job %s still running at its next run time; that run is skipped", event.job_id)
        elif isinstance(event, JobExecutionEvent) and event.exception is not None:
            logger.error(
                "Job %s raised %s: %s", event.job_id, type(event.exception).__name__, event.exception
            )
        elif isinstance(event, JobExecutionEvent) and event.job_id not in ("bi-watchdog", "fold", "audit"):
            logger.info("Job %s ran: %s", event.job_id, event.retval)
