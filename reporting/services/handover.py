"""Writes: the compaction hands the overlay on to its new generation before it commits.

A compaction (a refresh) rebuilds the views in one REPEATABLE READ transaction,
from a snapshot taken when it began; at 10 M orders it runs for minutes, and the
orders changed meanwhile are in the change log, not in the new views. Without a
handover, the compaction's commit makes them all the tail at once: until the
first fold of the new generation commits (seconds at that size), every real-time
read recomputes tens of thousands of orders from the history, and takes seconds
instead of milliseconds.

The overlay of the generation being replaced already holds those orders as they
are now: every fold folded them in. So before the compaction commits,
:func:`overlay_handover`

1. folds the old generation once more, on a connection of its own (a fresh
   snapshot, the fold lock), and in that snapshot reads what the overlay holds for
   each order changed since the compaction's snapshot, and what the change log
   says of its order row since then (for ``existed`` and ``day_then``, as
   ``views_sql/pending_changes.sql`` defines them);
2. copies that into the compaction's transaction (COPY, streamed), where the new
   views are visible: their rows are what those orders counted as *then*;
3. writes the new generation's overlay there with
   ``reporting_overlay_fold_apply()``, exactly as a fold would, with the fold's
   snapshot as its snapshot.

The compaction then commits the views, their run and their overlay together: a
reader sees the old views with the old overlay or the new ones with the new
overlay, and the tail it recomputes is what changed during the handover (a
second or so), not during the compaction.

It is an optimisation only. Whenever it cannot be done exactly (no previous
generation, a TRUNCATE, an old overlay that cannot be trusted, the fold lock
held by someone else, any database error), it is skipped or rolled back to its
savepoint and the compaction commits as before: the first fold afterwards folds
the whole tail. A cancel of the compaction's own statements (``pg_cancel_backend``)
cancels the compaction; a cancel of the handover's connection, or of one of its
COPYs, only skips the handover. PostgreSQL drops a cancel that reaches a session idle in its
transaction, as the compaction's is while the handover works on its other
connection, so the scheduler's own cancel (``refresh_cancel``) is also checked
between the handover's steps. The refresh does not hand over after a plain
(blocking) refresh, whose locks would stop the handover's fold, with folding
off, nor for a deploy (``rebuild``), which swaps in views built by other SQL.

Behind a transaction pooler, the compaction holds two server connections (its
lock and its transaction) and the handover takes a third for a moment: a pool
of fewer than three makes the handover wait for the pooler's own timeout.

Its cost, in the compaction's transaction: two COPYs of the changed orders and
their transitions, and one index lookup per order in the new views; readers do
not wait for it (they read the old generation until the commit).
"""

from __future__ import annotations

__all__ = ["HandoverResult", "overlay_handover"]

import datetime as dt
import logging
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from typing import Any

import psycopg
from django.db import DatabaseError, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from psycopg import sql

from reporting.services.fold import FOLD_SQL, fold_begin
from reporting.sql_files import in_schema

logger = logging.getLogger(__name__)

# How long the handover waits for a running fold to finish. Folds take
# milliseconds; a fold lock held longer (a stuck session) skips the handover.
LOCK_WAIT = "5s"

# The orders changed since the compaction's snapshot (%(since)s), with what the
# old generation's overlay holds for them now and what counted then as the
# change log tells it (views_sql/pending_changes.sql, with that snapshot for the
# fold's). In the column order of pg_temp.reporting_fold_orders.
HANDOVER_ORDERS_SQL = """
CREATE TEMP TABLE reporting_handover_orders ON COMMIT DROP AS
WITH tail AS (
    SELECT
        changed.order_id,
        (array_agg(c.source ORDER BY c.id) FILTER (WHERE c.source LIKE 'order%'))[1] AS first_order_entry,
        bool_or(c.source IN ('order_delete', 'order_update_old')) AS order_row_removed
    FROM public.reporting_orderchange AS c
    CROSS JOIN LATERAL unnest(c.order_ids) AS changed (order_id)
    WHERE c.xid >= pg_snapshot_xmin({since}::pg_snapshot)
      AND NOT pg_visible_in_snapshot(c.xid, {since}::pg_snapshot)
    GROUP BY changed.order_id
)
SELECT
    t.order_id,
    false AS in_overlay,
    CASE
        WHEN t.first_order_entry IN ('order_delete', 'order_update_old') THEN true
        WHEN t.first_order_entry IN ('order_insert', 'order_update_new') THEN false
        ELSE ov.exists_now
    END AS existed,
    NULL::text AS status_then,
    CASE WHEN NOT t.order_row_removed THEN ov.day END AS day_then,
    ov.exists_now, ov.status_id, ov.status, ov.status_created, ov.day, ov.status_since,
    ov.order_id IS NOT NULL AS in_old_overlay
FROM tail AS t
LEFT JOIN LATERAL (
    SELECT ov.* FROM public.reporting_overlayorder AS ov
    WHERE ov.generation = {generation} AND ov.order_id = t.order_id
    LIMIT 1
) AS ov ON true
"""
# Whether the change log holds a TRUNCATE since that snapshot, and the rows it
# counts (as a fold counts them).
HANDOVER_CHANGES_SQL = """
SELECT bool_or(c.order_ids IS NULL), coalesce(sum(coalesce(cardinality(c.order_ids), 1)), 0)
FROM public.reporting_orderchange AS c
WHERE c.xid >= pg_snapshot_xmin(%(since)s::pg_snapshot)
  AND NOT pg_visible_in_snapshot(c.xid, %(since)s::pg_snapshot)
"""
ORDER_COLUMNS = (
    "order_id, in_overlay, existed, status_then, day_then, exists_now, status_id, status, "
    "status_created, day, status_since"
)
TRANSITION_COLUMNS = "status_id, order_id, from_status, to_status, created, week, since_first"
COPY_ORDERS_OUT = f"COPY (SELECT {ORDER_COLUMNS} FROM pg_temp.reporting_handover_orders) TO STDOUT"  # noqa: S608 (constants)
COPY_TRANSITIONS_OUT = """
COPY (
    SELECT x.status_id, x.order_id, x.from_status, x.to_status, x.created, x.week, x.since_first
    FROM pg_temp.reporting_handover_orders AS h
    CROSS JOIN LATERAL (
        SELECT x.* FROM public.reporting_overlaytransition AS x
        WHERE x.generation = {generation} AND x.order_id = h.order_id
        OFFSET 0
    ) AS x
) TO STDOUT
"""
COPY_ORDERS_IN = f"COPY pg_temp.reporting_fold_orders ({ORDER_COLUMNS}) FROM STDIN"
COPY_TRANSITIONS_IN = f"COPY pg_temp.reporting_fold_transitions ({TRANSITION_COLUMNS}) FROM STDIN"
# In the compaction's transaction: what each order counted as in the new views
# (one index lookup each, as in views_sql/pending_changes.sql).
STATUS_THEN_SQL = in_schema("""
UPDATE pg_temp.reporting_fold_orders AS f
SET status_then = (
    SELECT v.status::text FROM reporting.order_latest_status AS v WHERE v.order_id = f.order_id LIMIT 1
)
""")
APPLY_SQL = "SELECT public.reporting_overlay_fold_apply(%s, %s, %s, %s, false)"


@dataclass(frozen=True)
class HandoverResult:
    """What a handover did.

    Attributes:
        orders: the orders changed during the compaction, now in the new overlay.
        changes: the rows written to the order tables that those orders' changes were.
        duration: how long it took.
    """

    orders: int
    changes: int
    duration: dt.timedelta


class _Skip(Exception):
    """The handover cannot be done exactly now; the compaction goes on without it."""


class _Cancelled(Exception):
    """The compaction was asked to cancel while the handover ran."""


def overlay_handover(
    connection: BaseDatabaseWrapper,
    cursor: Any,
    generation: int,
    snapshot: str,
    *,
    cancelled: Callable[[], bool] = lambda: False,
) -> HandoverResult | None:
    """Hand the overlay on to ``generation``, in the compaction's open transaction.

    Args:
        connection: the compaction's connection, in its REPEATABLE READ transaction
            after the views were refreshed.
        cursor: a cursor of it.
        generation: the compaction's refresh run (the new generation).
        snapshot: the compaction's snapshot (``pg_current_snapshot()`` as text).
        cancelled: whether the compaction was asked to cancel meanwhile (checked
            between the handover's steps: a cancel of the compaction's server process
            while it waits for this one would be lost).

    Returns:
        What it did, or ``None`` if it was skipped or failed (logged). Either way the
        compaction's transaction is usable: the handover's writes are in a savepoint.
    """
    started = time.perf_counter()
    try:
        with closing(_side_connection(connection)) as side:
            try:
                with side.cursor() as side_cursor:
                    orders, changes = _hand_over(
                        connection, cursor, side_cursor, generation, snapshot, cancelled
                    )
                side.commit()
            except BaseException:
                side.rollback()
                raise
    except _Skip as reason:
        logger.info("Overlay handover to generation %s skipped: %s", generation, reason)
        return None
    except _Cancelled:
        from reporting.services.refresh import RefreshCancelledError

        raise RefreshCancelledError("canceling statement due to user request") from None
    except Exception as exc:
        cause = exc if isinstance(exc, psycopg.Error) else exc.__cause__
        # Django wraps the errors of the compaction's statements, not those of the
        # handover's own connection (nor of the COPYs, which go to the driver).
        ours = isinstance(exc, DatabaseError)
        if ours and isinstance(cause, psycopg.errors.QueryCanceled) and "user request" in str(cause):
            # Someone cancelled a statement of the compaction itself (pg_cancel_backend):
            # it is cancelled, not committed without its handover. A cancel of the
            # handover's own connection only skips the handover.
            from reporting.services.refresh import RefreshCancelledError

            raise RefreshCancelledError(str(cause).strip()) from exc
        if isinstance(cause, psycopg.errors.LockNotAvailable):
            logger.info(
                "Overlay handover to generation %s skipped: a lock it needs was held (%s)", generation, cause
            )
            return None
        # Never the compaction's failure: its savepoint is rolled back, and the
        # first fold afterwards folds the whole tail, as without a handover.
        logger.exception(
            "Overlay handover to generation %s failed; the compaction goes on without it", generation
        )
        return None
    result = HandoverResult(orders, changes, dt.timedelta(seconds=time.perf_counter() - started))
    logger.info(
        "Overlay handed over to generation %s: %d orders (%d changes) in %.0f ms",
        generation,
        orders,
        changes,
        result.duration.total_seconds() * 1000,
    )
    return result


def _hand_over(
    connection: BaseDatabaseWrapper,
    cursor: Any,
    side_cursor: Any,
    generation: int,
    snapshot: str,
    cancelled: Callable[[], bool],
) -> tuple[int, int]:
    def step() -> None:
        if cancelled():
            raise _Cancelled

    previous, f_snapshot, f_at = _fold_old_generation(side_cursor)
    step()
    is_truncated, changes = _changes_since(side_cursor, snapshot)
    if is_truncated:
        raise _Skip("a TRUNCATE since the compaction's snapshot")
    side_cursor.execute(
        sql.SQL(HANDOVER_ORDERS_SQL).format(since=sql.Literal(snapshot), generation=sql.Literal(previous))
    )
    side_cursor.execute(
        "SELECT count(*), count(*) FILTER (WHERE NOT in_old_overlay) FROM pg_temp.reporting_handover_orders"
    )
    orders, missing = side_cursor.fetchone()
    step()
    if missing:
        # Every order changed since the old generation's snapshot is in its overlay
        # after a fold; one that is not means that overlay cannot be trusted here.
        # The first fold will recompute them.
        raise _Skip(f"{missing} changed orders are not in generation {previous}'s overlay")
    transitions_out = sql.SQL(COPY_TRANSITIONS_OUT).format(generation=sql.Literal(previous))
    # A savepoint: a failure here leaves the compaction's transaction as it was.
    with transaction.atomic(using=connection.alias):
        # Lookups by key: JIT compilation would cost more than they do.
        cursor.execute("SET LOCAL jit = off")
        cursor.execute("SELECT public.reporting_overlay_fold_tables()")
        _copy(side_cursor, cursor, COPY_ORDERS_OUT, COPY_ORDERS_IN)
        _copy(side_cursor, cursor, transitions_out, COPY_TRANSITIONS_IN)
        # Done with the old generation: its fold lock goes now, since writing the
        # new generation's fold row below needs a lock that conflicts with it.
        side_cursor.connection.commit()
        step()
        cursor.execute("ANALYZE pg_temp.reporting_fold_orders")
        cursor.execute(STATUS_THEN_SQL)
        cursor.execute(APPLY_SQL, [generation, f_snapshot, f_at, changes])
    return orders, changes


def _fold_old_generation(cursor: Any) -> tuple[int, str, dt.datetime]:
    """Fold the generation the compaction replaces, in this transaction; its generation and snapshot."""
    fold_begin(cursor, LOCK_WAIT)
    # Never a long wait for any lock: the compaction's transaction waits for this
    # one, so a lock it holds would stall both until a timeout.
    cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_WAIT}'")
    cursor.execute(FOLD_SQL)
    previous, _, _, _, outcome = cursor.fetchone()
    if outcome != "ok":
        raise _Skip(f"the previous generation cannot be folded ({outcome})")
    cursor.execute(
        "SELECT snapshot, snapshot_at FROM public.reporting_fold WHERE generation = %s", [previous]
    )
    f_snapshot, f_at = cursor.fetchone()
    return previous, f_snapshot, f_at


def _changes_since(cursor: Any, snapshot: str) -> tuple[bool, int]:
    cursor.execute(HANDOVER_CHANGES_SQL, {"since": snapshot})
    is_truncated, changes = cursor.fetchone()
    return bool(is_truncated), changes


def _copy(source: Any, target: Any, copy_out: Any, copy_in: str) -> None:
    """Stream one COPY from the side connection into the compaction's transaction."""
    with source.copy(copy_out) as out, target.copy(copy_in) as into:
        for block in out:
            into.write(block)


def _side_connection(connection: BaseDatabaseWrapper) -> Any:
    """A second connection to the compaction's database, in a transaction of its own."""
    params = connection.get_connection_params()
    params["application_name"] = "reporting overlay handover"
    side = connection.get_new_connection(params)
    side.autocommit = False
    return side
