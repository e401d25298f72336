"""Writes: refreshing the reporting views, with locking, logging and the change log.

One run of :func:`views_refresh`:

1. takes a session-level advisory lock; a second refresher (another scheduler
   replica, a manual command) that cannot get it records a ``skipped`` run and
   returns at once instead of queueing behind the first;
2. unless forced, returns ``unchanged`` when the change log holds nothing that
   the last successful refresh did not absorb;
3. in one REPEATABLE READ transaction, records the MVCC snapshot and its time,
   refreshes every view in dependency order (``CONCURRENTLY`` when the view has
   rows; PostgreSQL refuses it for a view that was never populated, and it is
   wasted on an empty one), counts what it
   absorbed and marks the run ``ok``, all in that snapshot, so the view's contents
   and the snapshot its run records commit together. A failure rolls all of it
   back: the previous data stays in place, and the run is marked ``failed`` with
   its error in a transaction of its own;
4. after the commit, prunes the change-log entries the new snapshot absorbed,
   and ``VACUUM (ANALYZE)``s the views (not allowed in a transaction), so that
   index-only scans and plans stay good.
"""

from __future__ import annotations

__all__ = ["REFRESH_LOCK_KEY", "RefreshResult", "reporting_views", "views_refresh"]

import datetime as dt
import logging
from dataclasses import dataclass

from django.apps import apps
from django.db import Error as DatabaseError
from django.db import connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils import timezone
from django_pgviews import view as pg
from django_pgviews.dependencies import reorder_by_dependencies

from reporting import conf
from reporting.choices import RefreshOutcome, RefreshTrigger
from reporting.matviews import OrderLatestStatusView
from reporting.models import RefreshRun

logger = logging.getLogger(__name__)

# The key of the advisory lock that makes refreshes one at a time per database:
# the bytes of "rptviews" as a bigint, unlikely to collide with anyone else's.
REFRESH_LOCK_KEY = int.from_bytes(b"rptviews", "big") - 2**63

LAST_SNAPSHOT_SQL = """
SELECT snapshot FROM reporting_refreshrun WHERE outcome = 'ok' ORDER BY id DESC LIMIT 1
"""
# Anything in the change log that the given snapshot has not absorbed?
CHANGED_SINCE_SQL = """
SELECT EXISTS (
    SELECT 1 FROM reporting_orderchange WHERE NOT pg_visible_in_snapshot(xid, %s::pg_snapshot)
)
"""
# The first statement of the refresh transaction: in REPEATABLE READ it fixes
# the snapshot that every later statement, the REFRESHes included, reads.
# statement_timestamp() is taken before the snapshot, so every transaction that
# committed before it is in the views.
BEGIN_REFRESH_SQL = """
SELECT pg_current_snapshot()::text, statement_timestamp(),
       set_config('statement_timeout', %s, true), set_config('lock_timeout', %s, true)
"""
# The changes this refresh took in: rows written to the source tables since the
# previous refresh's snapshot (a TRUNCATE counts as one), as reporting.freshness counts them.
ABSORBED_SQL = """
SELECT coalesce(sum(coalesce(cardinality(c.order_ids), 1)), 0)
FROM reporting_orderchange AS c
WHERE pg_visible_in_snapshot(c.xid, %(new)s::pg_snapshot)
  AND (%(old)s::pg_snapshot IS NULL OR NOT pg_visible_in_snapshot(c.xid, %(old)s::pg_snapshot))
"""
PRUNE_SQL = "DELETE FROM reporting_orderchange WHERE pg_visible_in_snapshot(xid, %s::pg_snapshot)"


@dataclass(frozen=True)
class RefreshResult:
    """What one refresh run did; the same facts as its ``RefreshRun`` row."""

    run_id: int
    outcome: RefreshOutcome
    views: list[str]
    snapshot_at: dt.datetime | None = None
    duration: dt.timedelta | None = None
    rows: int | None = None
    changes_absorbed: int | None = None
    error: str = ""

    @classmethod
    def of(cls, run: RefreshRun) -> RefreshResult:
        return cls(
            run_id=run.pk,
            outcome=RefreshOutcome(run.outcome),
            views=run.views.split(","),
            snapshot_at=run.snapshot_at,
            duration=run.duration,
            rows=run.rows,
            changes_absorbed=run.changes_absorbed,
            error=run.error,
        )


def reporting_views() -> list[type[pg.MaterializedView]]:
    """Return every reporting materialized view, dependencies first."""
    views = [m for m in apps.get_models() if isinstance(m, type) and issubclass(m, pg.MaterializedView)]
    return [v for v in reorder_by_dependencies(views) if issubclass(v, pg.MaterializedView)]


def views_refresh(
    *,
    trigger: str = RefreshTrigger.MANUAL,
    concurrently: bool = True,
    force: bool = False,
    using: str = "default",
) -> RefreshResult:
    """Refresh every reporting view, once, and record the run in the refresh log.

    Args:
        trigger: what asked for it: ``schedule``, ``manual`` or ``startup``.
        concurrently: ``REFRESH ... CONCURRENTLY`` (readers never blocked). A view
            that is empty or was never populated is filled plainly, whatever this says.
        force: refresh even when nothing changed since the last refresh.
        using: the database alias (always the primary: refreshes write).

    Returns:
        The run: ``ok``, ``unchanged``, ``skipped`` (another refresh holds the lock)
        or ``failed`` (the error is in ``error``; the previous data is intact).

    Raises:
        RuntimeError: called inside a transaction. The refresh commits on its own
            and vacuums afterwards, which no transaction block allows.
    """
    connection = connections[using]
    if connection.in_atomic_block:
        raise RuntimeError("views_refresh() must run in autocommit mode, not inside a transaction")
    views = reporting_views()
    names = ",".join(v._meta.db_table for v in views)
    started = timezone.now()

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [REFRESH_LOCK_KEY])
        locked = cursor.fetchone()[0]
    if not locked:
        logger.info("Refresh skipped: another refresh holds the lock")
        return _record_quick_run(names, trigger, concurrently, RefreshOutcome.SKIPPED, started, using)
    try:
        with connection.cursor() as cursor:
            cursor.execute(LAST_SNAPSHOT_SQL)
            row = cursor.fetchone()
            last_snapshot = row[0] if row else None
            if not force and last_snapshot is not None and all(_is_populated(connection, v) for v in views):
                cursor.execute(CHANGED_SINCE_SQL, [last_snapshot])
                if not cursor.fetchone()[0]:
                    logger.debug("Refresh unchanged: nothing changed since the last refresh")
                    return _record_quick_run(
                        names, trigger, concurrently, RefreshOutcome.UNCHANGED, started, using
                    )
        run = RefreshRun.objects.using(using).create(
            views=names,
            trigger=trigger,
            outcome=RefreshOutcome.RUNNING,
            concurrently=concurrently,
            started=started,
        )
        return _refresh(connection, run, views, concurrently=concurrently, last_snapshot=last_snapshot)
    finally:
        _unlock(connection)


def _refresh(
    connection: BaseDatabaseWrapper,
    run: RefreshRun,
    views: list[type[pg.MaterializedView]],
    *,
    concurrently: bool,
    last_snapshot: str | None,
) -> RefreshResult:
    try:
        with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            cursor.execute(
                BEGIN_REFRESH_SQL,
                [_ms(conf.refresh_statement_timeout()), _ms(conf.refresh_lock_timeout())],
            )
            snapshot, snapshot_at, _, _ = cursor.fetchone()
            for view in views:
                # Our own statement rather than pgviews' refresh(): it runs on this
                # connection and transaction, and it never falls back to a blocking
                # refresh silently (pgviews does without strict=True).
                if concurrently and _has_rows(connection, view):
                    cursor.execute(f"REFRESH MATERIALIZED VIEW CONCURRENTLY {_qualified(connection, view)}")
                else:
                    cursor.execute(f"REFRESH MATERIALIZED VIEW {_qualified(connection, view)}")
            cursor.execute(f"SELECT count(*) FROM {_qualified(connection, OrderLatestStatusView)}")  # noqa: S608
            rows = cursor.fetchone()[0]
            cursor.execute(ABSORBED_SQL, {"new": snapshot, "old": last_snapshot})
            absorbed = cursor.fetchone()[0]
            run.outcome = RefreshOutcome.OK
            run.snapshot, run.snapshot_at, run.rows, run.changes_absorbed = (
                snapshot,
                snapshot_at,
                rows,
                absorbed,
            )
            _finish(run)
            run.save()
    except DatabaseError as exc:
        logger.error("Refresh %s failed: %s", run.pk, exc)
        run.outcome, run.error = RefreshOutcome.FAILED, str(exc).strip()
        run.snapshot, run.snapshot_at, run.rows, run.changes_absorbed = "", None, None, None
        _finish(run)
        try:
            run.save()
        except DatabaseError:
            logger.exception("Could not record the failure of refresh %s", run.pk)
        return RefreshResult.of(run)

    logger.info(
        "Refreshed %s in %.0f ms: %d rows, %d changes absorbed, snapshot of %s",
        run.views,
        run.duration.total_seconds() * 1000 if run.duration else 0,
        rows,
        absorbed,
        snapshot_at.isoformat(),
    )
    _after_refresh(connection, views, snapshot)
    return RefreshResult.of(run)


def _after_refresh(
    connection: BaseDatabaseWrapper, views: list[type[pg.MaterializedView]], snapshot: str
) -> None:
    """Prune what the new snapshot absorbed, forget old runs, vacuum the views.

    None of this is needed for correct answers, so a failure is logged, not raised.
    """
    keep_after = timezone.now() - dt.timedelta(days=conf.refresh_log_retention_days())
    try:
        with connection.cursor() as cursor:
            cursor.execute(PRUNE_SQL, [snapshot])
            # Keep the latest successful run whatever its age: readers need its snapshot.
            latest_ok = (
                RefreshRun.objects.using(connection.alias).filter(outcome=RefreshOutcome.OK).order_by("-id")
            )
            RefreshRun.objects.using(connection.alias).filter(started__lt=keep_after).exclude(
                pk__in=latest_ok.values("pk")[:1]
            ).delete()
            for view in views:
                cursor.execute(f"VACUUM (ANALYZE) {_qualified(connection, view)}")
    except DatabaseError:
        logger.exception("Maintenance after the refresh failed; the refresh itself is committed")


def _record_quick_run(
    names: str, trigger: str, concurrently: bool, outcome: RefreshOutcome, started: dt.datetime, using: str
) -> RefreshResult:
    finished = timezone.now()
    run = RefreshRun.objects.using(using).create(
        views=names,
        trigger=trigger,
        outcome=outcome,
        concurrently=concurrently,
        started=started,
        finished=finished,
        duration=finished - started,
    )
    return RefreshResult.of(run)


def _finish(run: RefreshRun) -> None:
    run.finished = timezone.now()
    run.duration = run.finished - run.started


def _is_populated(connection: BaseDatabaseWrapper, view: type[pg.MaterializedView]) -> bool:
    schema, name = view._meta.db_table.split(".")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT ispopulated FROM pg_matviews WHERE schemaname = %s AND matviewname = %s", [schema, name]
        )
        row = cursor.fetchone()
    return bool(row and row[0])


def _has_rows(connection: BaseDatabaseWrapper, view: type[pg.MaterializedView]) -> bool:
    """Populated and not empty: the views that CONCURRENTLY is for.

    A never-populated view cannot be refreshed concurrently. An empty one can, but
    CONCURRENTLY would then build the new contents aside, diff them against
    nothing and insert every row through the indexes, where a plain refresh
    writes the table and builds its indexes once; readers would only see the
    view empty meanwhile.
    """
    if not _is_populated(connection, view):
        return False
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT EXISTS (SELECT FROM {_qualified(connection, view)})")  # noqa: S608
        return bool(cursor.fetchone()[0])


def _unlock(connection: BaseDatabaseWrapper) -> None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [REFRESH_LOCK_KEY])
    except DatabaseError:
        # The connection is gone, and the session-level lock with it.
        logger.warning("Could not release the refresh lock; the connection was lost")
        connection.close()


def _qualified(connection: BaseDatabaseWrapper, view: type[pg.MaterializedView]) -> str:
    """The view's schema-qualified name, each part quoted."""
    return ".".join(connection.ops.quote_name(part) for part in view._meta.db_table.split("."))


def _ms(seconds: float) -> str:
    return f"{max(1, round(seconds * 1000))}ms"
