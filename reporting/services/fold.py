"""Writes: folding the change log into the overlay, in time proportional to what changed.

Between two refreshes, the materialized views are carried forward by the
*overlay*: the orders changed since the views' snapshot, as of the latest fold,
with what they add to each count. A fold (``views_sql/overlay_fold.sql``)
takes the *tail*, the orders changed since the previous fold, recomputes each
from its status history (one index range), and commits the result with its
snapshot. Real-time reads then recompute only the tail. A refresh is the
compaction: it rebuilds the views and starts a new overlay (a new *generation*),
which holds the orders changed while it ran (its handover,
:mod:`reporting.services.handover`); the next fold deletes the old one.

One fold runs at a time: each takes ``LOCK TABLE reporting_fold IN EXCLUSIVE
MODE`` before its snapshot, and gives up (``skipped``) if another holds it for
longer than a moment. Readers take no lock that conflicts. A fold that fails or
is killed rolls back as a whole: the previous fold stays, and the tail is longer
until the next one. Folds do not wait for a refresh, nor a refresh for folds,
except around a compaction's handover (which folds once itself, and holds the
fold table from writing its new generation until it commits).
"""

from __future__ import annotations

__all__ = ["FOLD_SQL", "FoldResult", "fold_begin", "overlay_fold"]

import datetime as dt
import logging
import time
from dataclasses import dataclass
from typing import Any

import psycopg
from django.db import Error as DatabaseError
from django.db import connections, transaction

from reporting import conf
from reporting.models import Fold
from reporting.selectors.freshness import lock_holder

logger = logging.getLogger(__name__)

# How long a fold waits for the previous one. Folds take milliseconds; one that
# is still running when the next is due makes the next one unnecessary.
LOCK_WAIT = "200ms"
# A fold's statements; generous, as it only reads and writes what changed.
STATEMENT_TIMEOUT = "60s"
FOLD_SQL = "SELECT generation, orders, changes, overlay_orders, outcome FROM public.reporting_overlay_fold()"


@dataclass(frozen=True)
class FoldResult:
    """What one fold did.

    Attributes:
        outcome: ``ok``; ``skipped`` (another fold held the lock); ``no refresh yet``;
            ``needs a refresh`` (a TRUNCATE, or views rewritten by a plain refresh:
            the change log cannot say what changed).
        generation: the refresh run whose views the overlay corrects.
        orders: the orders folded in (the tail it took).
        changes: the rows written to the order tables that those orders' changes were.
        overlay_orders: the orders in the overlay afterwards.
        duration: how long it took.
        holder: for ``skipped``, who held the fold lock (a session or a prepared transaction).
    """

    outcome: str
    generation: int | None = None
    orders: int = 0
    changes: int = 0
    overlay_orders: int = 0
    duration: dt.timedelta = dt.timedelta(0)
    holder: str = ""

    def refresh_reason(self) -> str | None:
        """Why a refresh (a compaction) should run now, or ``None``.

        A fold that cannot go on (a TRUNCATE, or views rewritten), or an overlay
        at ``REPORTING_COMPACT_OVERLAY_ORDERS`` orders or more.
        """
        limit = conf.compact_overlay_orders()
        if self.outcome == "needs a refresh":
            return "the change log cannot be folded (a TRUNCATE, or views rewritten)"
        if limit and self.overlay_orders >= limit:
            return f"the overlay holds {self.overlay_orders} orders (limit {limit})"
        return None


def fold_begin(cursor: Any, lock_wait: str = LOCK_WAIT) -> None:
    """Begin a fold on ``cursor``, whose transaction has not run a statement yet: its
    isolation, its limits, and the fold lock (waited for ``lock_wait`` at most).

    The caller then runs ``FOLD_SQL`` and commits. Raises the database's
    lock-not-available error (as the driver or Django wraps it) if another session
    holds the fold lock longer; the transaction must then be rolled back.
    """
    cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
    cursor.execute(f"SET LOCAL lock_timeout = '{lock_wait}'")
    cursor.execute(f"SET LOCAL statement_timeout = '{STATEMENT_TIMEOUT}'")
    # A fold reads by key what changed; JIT compilation would cost more than
    # the fold (docs/deployment.md, "JIT").
    cursor.execute("SET LOCAL jit = off")
    # Before the snapshot (LOCK takes none): this fold sees the previous one's commit.
    cursor.execute(f"LOCK TABLE {Fold._meta.db_table} IN EXCLUSIVE MODE")
    # The short wait is for the fold lock only: a view that a plain refresh
    # holds may be waited for (within the statement timeout).
    cursor.execute(f"SET LOCAL lock_timeout = '{STATEMENT_TIMEOUT}'")


def overlay_fold(*, using: str = "default") -> FoldResult:
    """Fold the orders changed since the previous fold into the overlay, in one transaction.

    Args:
        using: the database alias (the primary: a fold writes).

    Raises:
        RuntimeError: called inside a transaction (a fold is a transaction of its own).
        django.db.Error: the database failed; nothing of the fold was kept.
    """
    connection = connections[using]
    if connection.in_atomic_block:
        raise RuntimeError("overlay_fold() must run in autocommit mode, not inside a transaction")
    started = time.perf_counter()
    locked = False
    try:
        with transaction.atomic(using=using), connection.cursor() as cursor:
            fold_begin(cursor)
            locked = True
            cursor.execute(FOLD_SQL)
            generation, orders, changes, overlay_orders, outcome = cursor.fetchone()
    except DatabaseError as exc:
        if not locked and isinstance(exc.__cause__, psycopg.errors.LockNotAvailable):
            holder = lock_holder(Fold._meta.db_table, using=using)
            logger.info("Fold skipped: the fold lock is held by %s", holder or "a session gone since")
            return FoldResult(
                "skipped",
                duration=dt.timedelta(seconds=time.perf_counter() - started),
                holder=str(holder or ""),
            )
        raise
    result = FoldResult(
        outcome,
        generation,
        orders,
        changes,
        overlay_orders,
        dt.timedelta(seconds=time.perf_counter() - started),
    )
    logger.debug(
        "Fold %s: %d orders (%d changes) in %.1f ms; the overlay holds %d",
        outcome,
        orders,
        changes,
        result.duration.total_seconds() * 1000,
        overlay_orders,
    )
    return result
