"""Writes: refreshing the reporting views, with locking, logging and the change log.

One run of :func:`views_refresh`:

1. takes the refresh lock (``LOCK TABLE reporting_refreshlock IN EXCLUSIVE MODE``
   on a connection of its own, see :class:`~reporting.models.RefreshLock`); a
   second refresher (another scheduler replica, a manual command) that cannot
   get it within a second records a ``skipped`` run naming the holder, and
   returns instead of queueing behind the first;
2. marks runs that are still ``running`` as ``abandoned``: holding the lock, it
   knows that their process died (kill -9, a server restart);
3. unless forced, returns ``unchanged`` when the change log holds nothing that
   the last successful refresh did not absorb and the views are as that
   refresh left them. Such a run records when it checked: the views were exact
   then too, so freshness moves on while nothing changes;
4. in one REPEATABLE READ transaction, records the MVCC snapshot and its time,
   refreshes every view in dependency order (``CONCURRENTLY`` whenever the view
   is populated, even empty; plainly only a view that was never populated, which
   PostgreSQL refuses to refresh concurrently, in short tries that never keep
   readers queued, see :func:`_refresh_plainly`), counts what it absorbed, records the files the views
   are now stored in, hands the overlay on to the new generation (the orders
   changed while it ran, :mod:`reporting.services.handover`), and marks the run
   ``ok``, all in that snapshot, so the views' contents, their overlay and the
   snapshot their run records commit together. A
   failure rolls all of it back: the previous data stays in place, and the run
   is marked ``failed`` with its error in a transaction of its own;
5. after the commit, prunes the change-log entries the new snapshot absorbed,
   and ``VACUUM (ANALYZE)``s the views (not allowed in a transaction), so that
   index-only scans and plans stay good.
"""

from __future__ import annotations

__all__ = ["compaction_at_start_reason", "refresh_cancel", "reporting_views", "views_refresh"]

import dataclasses
import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg
from django.db import Error as DatabaseError
from django.db import OperationalError, connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils import timezone
from django_pgviews import view as pg

from reporting import conf
from reporting.choices import RefreshOutcome, RefreshTrigger
from reporting.matviews import OrderLatestStatusView, reporting_views
from reporting.models import RefreshLock, RefreshRun
from reporting.refresh_log import RefreshRunSummary
from reporting.selectors.freshness import LOCK_APPLICATION_NAME, refresh_lock_holder
from reporting.services.handover import overlay_handover
from reporting.sql_files import in_schema

logger = logging.getLogger(__name__)

# How long a refresh waits for the lock before it records "skipped". Not zero:
# a statement that merely names the lock table (even one refused for lack of
# privileges) holds a weak lock on it for an instant, and a refresh should not
# be skipped for that. Far shorter than any refresh, so a second refresher
# does not queue behind a running one.
LOCK_WAIT = "1s"

LAST_SNAPSHOT_SQL = """
SELECT snapshot FROM reporting_refreshrun WHERE outcome = 'ok' ORDER BY id DESC LIMIT 1
"""
# Can the views and the change log answer exactly without a refresh? Nothing in
# the change log that their snapshot has not absorbed, and they are stored where
# their refresh left them. statement_timestamp() is taken before the statement's
# snapshot: everything committed before it is in the views.
UNCHANGED_SQL = in_schema("""
SELECT NOT st.needs_full_recompute
       AND NOT EXISTS (
           SELECT 1 FROM reporting_orderchange AS c WHERE NOT pg_visible_in_snapshot(c.xid, st.snapshot)
       ),
       statement_timestamp()
FROM public.reporting_snapshot_state AS st
""")
# The first statement of the refresh transaction: in REPEATABLE READ it fixes
# the snapshot that every later statement, the REFRESHes included, reads.
# statement_timestamp() is taken before the snapshot, so every transaction that
# committed before it is in the views.
BEGIN_REFRESH_SQL = """
SELECT pg_current_snapshot()::text, statement_timestamp(),
       set_config('statement_timeout', %s, true), set_config('lock_timeout', %s, true),
       set_config('idle_in_transaction_session_timeout', '0', true)
"""
# The changes this refresh took in: rows written to the source tables since the
# previous refresh's snapshot (a TRUNCATE counts as one), as reporting.freshness counts them.
ABSORBED_SQL = """
SELECT coalesce(sum(coalesce(cardinality(c.order_ids), 1)), 0)
FROM reporting_orderchange AS c
WHERE pg_visible_in_snapshot(c.xid, %(new)s::pg_snapshot)
  AND (%(old)s::pg_snapshot IS NULL OR NOT pg_visible_in_snapshot(c.xid, %(old)s::pg_snapshot))
"""
# The files the views are stored in, as the readers' snapshot_state compares them.
VIEW_FILENODES_SQL = in_schema("SELECT view_filenodes FROM public.reporting_snapshot_state")
PRUNE_SQL = "DELETE FROM reporting_orderchange WHERE pg_visible_in_snapshot(xid, %s::pg_snapshot)"
LOCK_LOST = "the refresh lock was lost, its connection ended"
ABANDONED_ERROR = (
    "its process stopped before it recorded an outcome (killed, or the database restarted); "
    "it rolled back, so nothing of it was kept"
)
CANCELLED_ERROR = "cancelled on request (the scheduler stopping, or pg_cancel_backend); it rolled back"

# The server processes whose refresh this process asked to cancel (refresh_cancel):
# their run is recorded "cancelled", not "failed".
_cancel_requested: set[int] = set()
_cancel_lock = threading.Lock()


class RefreshCancelledError(DatabaseError):
    """A refresh stopped between two statements because it was asked to cancel."""


def refresh_cancel(backend_pid: int, *, using: str = "default") -> bool:
    """Cancel the refresh that the server process ``backend_pid`` runs for this process.

    It rolls back, and its run is recorded ``cancelled``. For the scheduler's stop
    (SIGTERM after the grace period); ``pg_cancel_backend`` from elsewhere is
    recorded ``cancelled`` as well.

    Returns:
        Whether the server found the process.
    """
    with _cancel_lock:
        _cancel_requested.add(backend_pid)
    with connections[using].cursor() as cursor:
        cursor.execute("SELECT pg_cancel_backend(%s)", [backend_pid])
        return bool(cursor.fetchone()[0])


def _cancel_was_requested(connection: BaseDatabaseWrapper) -> bool:
    pid = connection.connection.info.backend_pid if connection.connection is not None else None
    with _cancel_lock:
        return pid in _cancel_requested


def _was_cancelled(connection: BaseDatabaseWrapper, exc: DatabaseError) -> bool:
    """Whether the refresh stopped because someone asked it to, not because it failed.

    Asked by this process (:func:`refresh_cancel`), or by anyone with
    ``pg_cancel_backend`` ("due to user request": a statement timeout raises the
    same SQLSTATE, 57014, with another message).
    """
    if isinstance(exc, RefreshCancelledError) or _cancel_was_requested(connection):
        return True
    cause = exc.__cause__
    return isinstance(cause, psycopg.errors.QueryCanceled) and "user request" in str(cause)


def views_refresh(
    *,
    trigger: str = RefreshTrigger.MANUAL,
    concurrently: bool = True,
    force: bool = False,
    rebuild: bool = False,
    lock_wait: float | None = None,
    using: str = "default",
) -> RefreshRunSummary:
    """Refresh every reporting view, once, and record the run in the refresh log.

    Args:
        trigger: what asked for it: ``schedule``, ``manual`` or ``startup``.
        concurrently: ``REFRESH ... CONCURRENTLY`` (readers never blocked). A view
            that was never populated is filled plainly, whatever this says; a
            plain refresh waits for its lock in short tries (:func:`_refresh_plainly`).
        force: refresh even when nothing changed since the last refresh.
        rebuild: build every view anew beside the current ones and swap them in
            (a deploy of changed SQL, :mod:`reporting.services.view_deploy`).
        lock_wait: seconds to wait for the refresh lock (default ``LOCK_WAIT``,
            a second: a scheduled refresh does not queue behind another).
        using: the database alias (always the primary: refreshes write).

    Returns:
        The run: ``ok``, ``unchanged`` (its ``snapshot_at`` is when it found nothing
        changed), ``skipped`` (another session holds the refresh lock; ``error``
        names it) or ``failed`` (the error is in ``error``; the previous data is intact).

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

    lock = _RefreshLock(connection, LOCK_WAIT if lock_wait is None else _ms(lock_wait))
    if not lock.acquire():
        holder = refresh_lock_holder(using=using)
        detail = f"the refresh lock is held by {holder}" if holder else "the refresh lock was held"
        logger.info("Refresh skipped: %s", detail)
        return _record_quick_run(
            names, trigger, concurrently, RefreshOutcome.SKIPPED, started, using, error=detail
        )
    try:
        _abandon_dead_runs(using)
        with connection.cursor() as cursor:
            cursor.execute(LAST_SNAPSHOT_SQL)
            row = cursor.fetchone()
            last_snapshot = row[0] if row else None
            if not force and _all_populated(connection, views):
                cursor.execute(UNCHANGED_SQL)
                unchanged, checked_at = cursor.fetchone()
                if unchanged:
                    logger.debug("Refresh unchanged: nothing changed since the last refresh")
                    return _record_quick_run(
                        names,
                        trigger,
                        concurrently,
                        RefreshOutcome.UNCHANGED,
                        started,
                        using,
                        snapshot_at=checked_at,
                    )
        run = RefreshRun.objects.using(using).create(
            views=names,
            trigger=trigger,
            outcome=RefreshOutcome.RUNNING,
            concurrently=concurrently,
            started=started,
            backend_pid=connection.connection.info.backend_pid,
        )
        return _refresh(
            connection,
            run,
            views,
            concurrently=concurrently,
            last_snapshot=last_snapshot,
            lock=lock,
            rebuild=rebuild,
        )
    finally:
        lock.release()
        with _cancel_lock:
            _cancel_requested.discard(
                connection.connection.info.backend_pid if connection.connection else None
            )


# What the scheduler needs to know at start: can the overlay carry the views, and
# how much would the folds have to catch up (change-log rows since the latest
# fold: an upper bound of the orders, counted by the index on xid)?
START_STATE_SQL = """
SELECT st.generation IS NULL OR st.needs_full_recompute,
       st.overlay_orders,
       (SELECT coalesce(sum(coalesce(cardinality(c.order_ids), 1)), 0)
        FROM public.reporting_orderchange AS c
        WHERE c.xid >= pg_snapshot_xmin(st.fold_snapshot)
          AND NOT pg_visible_in_snapshot(c.xid, st.fold_snapshot))
FROM public.reporting_snapshot_state AS st
"""


def compaction_at_start_reason(*, using: str = "default") -> str | None:
    """Why the scheduler should refresh (compact) when it starts, or ``None`` if it need not.

    A compaction costs minutes at 10 M orders, and the overlay already carries the
    views forward: the folds catch up on whatever changed while no scheduler ran,
    in time proportional to it. So a start compacts only when the overlay cannot
    carry the views: folding is off (``REPORTING_FOLD_INTERVAL`` 0), a view is not
    populated, no refresh has succeeded, a TRUNCATE or a rewrite of the views
    (real-time reads recompute everything), or the overlay with what the folds
    have to catch up would reach ``REPORTING_COMPACT_OVERLAY_ORDERS``, where the
    first fold would ask for a compaction anyway.
    """
    connection = connections[using]
    if conf.fold_interval() <= 0:
        return "folding is off (REPORTING_FOLD_INTERVAL is 0)"
    if not _all_populated(connection, reporting_views()):
        return "a view is not populated"
    with connection.cursor() as cursor:
        cursor.execute(START_STATE_SQL)
        full_recompute, overlay_orders, tail = cursor.fetchone()
    if full_recompute:
        return "the change log cannot correct the views (no refresh yet, a TRUNCATE, or views rewritten)"
    limit = conf.compact_overlay_orders()
    if limit and overlay_orders + tail >= limit:
        return (
            f"the overlay holds {overlay_orders} orders and {tail} changes are to fold "
            f"(REPORTING_COMPACT_OVERLAY_ORDERS {limit})"
        )
    return None


class _RefreshLock:
    """The refresh lock, held by a connection of its own for the whole run.

    Its own connection, because the refresh commits several times and vacuums
    (outside any transaction), while a table lock lasts one transaction. That
    transaction takes no snapshot and no transaction id, so holding it open
    holds back no VACUUM. If the process dies, the server ends the connection
    and the lock with it.
    """

    def __init__(self, connection: BaseDatabaseWrapper, wait: str = LOCK_WAIT) -> None:
        self.connection = connection
        self.wait = wait
        self.pg: Any = None

    def acquire(self) -> bool:
        """Take the lock, waiting ``LOCK_WAIT`` (or the wait given) at most; ``False`` if another
        session holds it.

        Raises:
            django.db.Error: the database cannot be reached (as Django's own errors,
                which the scheduler expects).
        """
        with self.connection.wrap_database_errors:
            self.connection.ensure_connection()
            params = self.connection.get_connection_params()
            # Set at connection time, no round trip: the server's or the role's
            # idle-in-transaction (or, from PostgreSQL 17, transaction) timeout must
            # not end it mid-refresh.
            settings = {"idle_in_transaction_session_timeout": "0", "lock_timeout": self.wait}
            if self.connection.connection.info.server_version >= 170000:
                settings["transaction_timeout"] = "0"
            # A transaction pooler refuses startup options (PgBouncer: "unsupported
            # startup parameter"): there the lock's transaction sets them itself.
            pooled = conf.pooled(self.connection.alias)
            if not pooled:
                options = " ".join(f"-c {name}={value}" for name, value in settings.items())
                params["options"] = f"{params['options']} {options}" if params.get("options") else options
            params["application_name"] = LOCK_APPLICATION_NAME
            self.pg = self.connection.get_new_connection(params)
            try:
                self.pg.autocommit = False
                if pooled:
                    for name, value in settings.items():
                        self.pg.execute("SELECT set_config(%s, %s, true)", [name, value])
                self.pg.execute(f"LOCK TABLE {RefreshLock._meta.db_table} IN EXCLUSIVE MODE")
            except psycopg.errors.LockNotAvailable:
                self.release()
                return False
            except BaseException:
                self.release()
                raise
        return True

    def check(self) -> None:
        """Make sure the lock is still held: its connection may have been ended meanwhile.

        Raises:
            django.db.Error: the lock is lost (another refresh may hold it by now).
        """
        try:
            with self.connection.wrap_database_errors:
                self.pg.execute("SELECT 1")
        except DatabaseError as exc:
            raise type(exc)(f"{LOCK_LOST}: {exc}") from exc

    def lost(self) -> bool:
        """Whether the lock's connection has ended."""
        try:
            self.check()
        except DatabaseError:
            return True
        return False

    def release(self) -> None:
        if self.pg is None:
            return
        try:
            self.pg.rollback()
            self.pg.close()
        except psycopg.Error:
            logger.warning("Could not release the refresh lock cleanly; closing its connection")
            self.pg.close()
        self.pg = None


# Of the given server processes, those still running.
ALIVE_SQL = "SELECT pid FROM pg_stat_activity WHERE pid = ANY(%s)"
ORPHAN_NOTE = (
    "; its server process {pid} was still running then: it cannot commit without the lock, "
    "and rolls back when its statement ends"
)


def _abandon_dead_runs(using: str) -> None:
    """Mark runs left ``running`` as ``abandoned``.

    The caller holds the lock, so a run still ``running`` lost it: its process
    died (its server process may still finish the statement it was running, and
    then roll back: nobody is left to commit it), or its lock connection was
    ended (its process finds out before it commits, rolls back and records
    ``failed``; see :meth:`_RefreshLock.check`). Either way it commits nothing.
    """
    now = timezone.now()
    running = list(RefreshRun.objects.using(using).filter(outcome=RefreshOutcome.RUNNING))
    if not running:
        return
    with connections[using].cursor() as cursor:
        cursor.execute(ALIVE_SQL, [[r.backend_pid for r in running if r.backend_pid]])
        alive = {pid for (pid,) in cursor.fetchall()}
    for run in running:
        note = ORPHAN_NOTE.format(pid=run.backend_pid) if run.backend_pid in alive else ""
        run.outcome, run.error, run.finished = RefreshOutcome.ABANDONED, ABANDONED_ERROR + note, now
        run.duration = now - run.started
        run.save(update_fields=["outcome", "error", "finished", "duration"])
        logger.warning("Refresh %s, started %s, was abandoned: %s", run.pk, run.started, run.error)


def _refresh(
    connection: BaseDatabaseWrapper,
    run: RefreshRun,
    views: list[type[pg.MaterializedView]],
    *,
    concurrently: bool,
    last_snapshot: str | None,
    lock: _RefreshLock,
    rebuild: bool = False,
) -> RefreshRunSummary:
    from reporting.services.view_deploy import views_build_beside, views_swap_in

    try:
        with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            cursor.execute(
                BEGIN_REFRESH_SQL,
                [_ms(conf.refresh_statement_timeout()), _ms(conf.refresh_lock_timeout())],
            )
            snapshot, snapshot_at, *_ = cursor.fetchone()
            # The transaction is idle while its overlay handover works on another
            # connection: a role's or the server's idle-in-transaction (or, from
            # PostgreSQL 17, transaction) timeout must not end it then.
            if connection.connection.info.server_version >= 170000:
                cursor.execute("SELECT set_config('transaction_timeout', '0', true)")
            handover = None
            if rebuild:
                # Counted before the swap, so that its locks are held no longer than it takes.
                rows = views_build_beside(connection, cursor, views)
                absorbed = _absorbed(cursor, snapshot, last_snapshot)
                in_short_lock_tries(connection, lambda: views_swap_in(connection, cursor, views))
            else:
                plain = False
                for view in views:
                    # Our own statement rather than pgviews' refresh(): it runs on this
                    # connection and transaction, and it never falls back to a blocking
                    # refresh silently (pgviews does without strict=True).
                    if concurrently and _is_populated(connection, view):
                        cursor.execute(
                            f"REFRESH MATERIALIZED VIEW CONCURRENTLY {_qualified(connection, view)}"
                        )
                    else:
                        _refresh_plainly(connection, view)
                        plain = True
                cursor.execute(f"SELECT count(*) FROM {_qualified(connection, OrderLatestStatusView)}")  # noqa: S608
                rows = cursor.fetchone()[0]
                absorbed = _absorbed(cursor, snapshot, last_snapshot)
                # The orders changed while the views were refreshed, carried into the
                # new generation's overlay before the commit, so that the commit does
                # not make them all the real-time reads' tail at once. Not after a
                # plain refresh: the views it holds locked against every reader would
                # stop the handover's fold on its other connection. Nor with folding
                # off: there is no overlay to hand over, and its one fold would take
                # everything since the previous refresh.
                if not plain and conf.fold_interval() > 0:
                    handover = overlay_handover(
                        connection,
                        cursor,
                        run.pk,
                        snapshot,
                        cancelled=lambda: _cancel_was_requested(connection),
                    )
                if _cancel_was_requested(connection):  # while the handover ran, on its other connection
                    raise RefreshCancelledError("canceling statement due to user request")
            cursor.execute(VIEW_FILENODES_SQL)
            run.view_filenodes = cursor.fetchone()[0]
            run.outcome = RefreshOutcome.OK
            run.snapshot, run.snapshot_at, run.rows, run.changes_absorbed = (
                snapshot,
                snapshot_at,
                rows,
                absorbed,
            )
            _finish(run)
            run.save()
            # Still ours? If not, another refresh may be running: roll all of it back.
            lock.check()
    except DatabaseError as exc:
        error = str(exc).strip()
        if _was_cancelled(connection, exc):
            logger.warning("Refresh %s cancelled: %s", run.pk, error)
            run.outcome, run.error = RefreshOutcome.CANCELLED, f"{CANCELLED_ERROR} ({error})"
            run.snapshot, run.snapshot_at, run.rows, run.changes_absorbed = "", None, None, None
            _finish(run)
            try:
                run.save()
            except DatabaseError:
                logger.exception("Could not record the cancellation of refresh %s", run.pk)
            return RefreshRunSummary.of(run)
        if LOCK_LOST not in error and lock.lost():
            # The loss is the cause; what failed then (a run marked abandoned meanwhile
            # by the refresh that took the lock, say) is its consequence.
            error = f"{LOCK_LOST} ({error})"
        logger.error("Refresh %s failed: %s", run.pk, error)
        run.outcome, run.error = RefreshOutcome.FAILED, error
        run.snapshot, run.snapshot_at, run.rows, run.changes_absorbed = "", None, None, None
        _finish(run)
        try:
            run.save()
        except DatabaseError:
            logger.exception("Could not record the failure of refresh %s", run.pk)
        return RefreshRunSummary.of(run)

    logger.info(
        "Refreshed %s in %.0f ms: %d rows, %d changes absorbed, snapshot of %s",
        run.views,
        run.duration.total_seconds() * 1000 if run.duration else 0,
        rows,
        absorbed,
        snapshot_at.isoformat(),
    )
    _after_refresh(connection, views, snapshot)
    summary = RefreshRunSummary.of(run)
    if handover is not None:
        summary = dataclasses.replace(
            summary, handed_over=handover.orders, handover_duration=handover.duration
        )
    return summary


def _absorbed(cursor: Any, snapshot: str, last_snapshot: str | None) -> int:
    cursor.execute(ABSORBED_SQL, {"new": snapshot, "old": last_snapshot})
    return cursor.fetchone()[0]


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
    names: str,
    trigger: str,
    concurrently: bool,
    outcome: RefreshOutcome,
    started: dt.datetime,
    using: str,
    *,
    snapshot_at: dt.datetime | None = None,
    error: str = "",
) -> RefreshRunSummary:
    finished = timezone.now()
    run = RefreshRun.objects.using(using).create(
        views=names,
        trigger=trigger,
        outcome=outcome,
        concurrently=concurrently,
        started=started,
        snapshot_at=snapshot_at,
        finished=finished,
        duration=finished - started,
        error=error,
    )
    return RefreshRunSummary.of(run)


def _finish(run: RefreshRun) -> None:
    run.finished = timezone.now()
    run.duration = run.finished - run.started


def _all_populated(connection: BaseDatabaseWrapper, views: list[type[pg.MaterializedView]]) -> bool:
    names = [view._meta.db_table for view in views]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FILTER (WHERE ispopulated) FROM pg_matviews "
            "WHERE schemaname || '.' || matviewname = ANY(%s)",
            [names],
        )
        return cursor.fetchone()[0] == len(names)


def _is_populated(connection: BaseDatabaseWrapper, view: type[pg.MaterializedView]) -> bool:
    schema, name = view._meta.db_table.split(".")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT ispopulated FROM pg_matviews WHERE schemaname = %s AND matviewname = %s", [schema, name]
        )
        row = cursor.fetchone()
    return bool(row and row[0])


# One try of a plain refresh waits this long for its lock at most, and the tries
# pause between them (doubling up to PLAIN_PAUSE_MAX), so that readers queued
# behind the waiting ACCESS EXCLUSIVE request get their turn.
PLAIN_TRY = 0.2
PLAIN_PAUSE = 0.05
PLAIN_PAUSE_MAX = 1.0


def _refresh_plainly(connection: BaseDatabaseWrapper, view: type[pg.MaterializedView]) -> None:
    """``REFRESH MATERIALIZED VIEW`` (not concurrently), in short tries for its lock
    (:func:`in_short_lock_tries`).

    Only views that were never populated (or a refresh asked for with
    ``concurrently=False``) come here: a populated view, even an empty one, is
    refreshed concurrently, which no reader blocks.
    """

    def refresh() -> None:
        with connection.cursor() as cursor:
            cursor.execute(f"REFRESH MATERIALIZED VIEW {_qualified(connection, view)}")

    in_short_lock_tries(connection, refresh)


def in_short_lock_tries(connection: BaseDatabaseWrapper, action: Callable[[], None]) -> None:
    """Run ``action()``, which takes ACCESS EXCLUSIVE locks, in short tries for them.

    Such a lock waits for every reader in an open transaction (a BI session within
    its limits), and every later reader queues behind the waiting request: one
    long wait would lock all readers out for as long as the first one stays. So
    each try waits ``PLAIN_TRY`` at most, rolls back to its savepoint and pauses,
    letting the queue drain; the tries go on until ``REPORTING_REFRESH_LOCK_TIMEOUT``
    is spent, then the lock timeout fails the refresh as any other would.

    Raises:
        django.db.Error: the action failed, or its locks were not free within the
            refresh's lock timeout.
    """
    alias = connection.alias
    deadline = time.monotonic() + conf.refresh_lock_timeout()
    pause = PLAIN_PAUSE
    with connection.cursor() as cursor:
        while True:
            try_for = min(PLAIN_TRY, max(0.0, deadline - time.monotonic()))
            try:
                with transaction.atomic(using=alias):  # a savepoint: a timed-out try undoes only itself
                    cursor.execute("SELECT set_config('lock_timeout', %s, true)", [_ms(try_for)])
                    action()
                    break
            except OperationalError as exc:
                if not isinstance(exc.__cause__, psycopg.errors.LockNotAvailable):
                    raise
                if time.monotonic() + pause >= deadline:
                    raise
            if _cancel_was_requested(connection):  # a cancel that came between two tries
                raise RefreshCancelledError("canceling statement due to user request")
            time.sleep(pause)
            pause = min(PLAIN_PAUSE_MAX, pause * 2)
        # The savepoint's release kept the short timeout: back to the refresh's own.
        cursor.execute("SELECT set_config('lock_timeout', %s, true)", [_ms(conf.refresh_lock_timeout())])


def _qualified(connection: BaseDatabaseWrapper, view: type[pg.MaterializedView]) -> str:
    """The view's schema-qualified name, each part quoted."""
    return ".".join(connection.ops.quote_name(part) for part in view._meta.db_table.split("."))


def _ms(seconds: float) -> str:
    return f"{max(1, round(seconds * 1000))}ms"
