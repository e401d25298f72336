"""Reads: how fresh the materialized views are, and how fresh one answer is."""

from __future__ import annotations

__all__ = [
    "LOCK_APPLICATION_NAME",
    "Freshness",
    "LockHolder",
    "ReadFreshness",
    "freshness",
    "lock_holder",
    "read_freshness",
    "refresh_lock_holder",
]

import datetime as dt
from dataclasses import dataclass

from django.db import connections

from reporting import conf, refresh_log
from reporting.choices import Strategy
from reporting.models import RefreshLock, RefreshRun
from reporting.refresh_log import RefreshRunSummary
from reporting.routers import read_database
from reporting.selectors import sql as raw
from reporting.sql_files import in_schema

# The application_name of the connection that holds the refresh lock.
LOCK_APPLICATION_NAME = "reporting refresh lock"

# The same view that BI dashboards read (views_sql/freshness.sql).
FRESHNESS_SQL = in_schema("SELECT as_of, checked_at, changes_since FROM reporting.freshness")
# The same figures for a real-time read, from the same parts as reporting.freshness
# (views_sql/freshness.sql), with the tail apart (the changes since the latest
# fold, which the read recomputes) and the orders the views hold: how the read
# decides whether to take the live path (ReadFreshness.tail_too_large).
REALTIME_FRESHNESS_SQL = in_schema("""
-- the freshness of a real-time read, and its tail
SELECT st.as_of, statement_timestamp(), st.folded_changes + t.changes, t.changes,
       (SELECT coalesce(sum(c.orders), 0)::bigint FROM reporting.order_status_counts AS c)
FROM public.reporting_snapshot_state AS st
CROSS JOIN LATERAL (
    SELECT pg_snapshot_xmax(st.fold_snapshot) AS xmax, ARRAY(SELECT pg_snapshot_xip(st.fold_snapshot)) AS xip
) AS f
CROSS JOIN LATERAL (
    -- Not visible in the fold's snapshot, as views_sql/pending_changes.sql finds them.
    SELECT coalesce(sum(coalesce(cardinality(c.order_ids), 1)), 0)::bigint AS changes
    FROM public.reporting_orderchange AS c
    WHERE c.xid >= f.xmax OR c.xid = ANY (f.xip)
) AS t
""")
REPLICA_FRESHNESS_SQL = in_schema(
    "SELECT as_of, checked_at, changes_since, on_replica, replay_lag, snapshot_at, folded_at, overlay_orders "
    "FROM reporting.freshness"
)


@dataclass(frozen=True)
class ReadFreshness:
    """How fresh one answer is.

    Attributes:
        strategy: how it was computed.
        as_of: the moment the answer is exact for. For ``snapshot``, the snapshot
            time of the refresh behind it, or the latest check since that found
            nothing changed: everything committed before it is in.
            For ``live`` and ``realtime``, the time of the read.
        view_as_of: when the materialized views were last known exact (the
            refresh's snapshot time, or a later check that found nothing
            changed); ``None`` for ``live`` reads, or before the first refresh.
        changes_since_view: changes (rows written to the source tables) since the
            views' snapshot: missing from a ``snapshot`` answer, corrected on the fly
            in a ``realtime`` one.
        checked_at: the database's clock at the read (how old a ``snapshot`` answer is).
        tail_changes: for ``realtime``, the changes since the latest fold (the tail
            the read recomputes); else ``None``.
        view_orders: for ``realtime``, the orders the views hold (with ``none``).
    """

    strategy: Strategy
    as_of: dt.datetime | None
    view_as_of: dt.datetime | None
    changes_since_view: int | None
    checked_at: dt.datetime
    tail_changes: int | None = None
    view_orders: int = 0

    @property
    def tail_too_large(self) -> bool:
        """A ``realtime`` read whose tail costs more to recompute than the whole history does.

        The tail is recomputed key by key (an index range each, then merged with the
        views): at 1 M orders and 500,000 unfolded changes the counts took 5.8 s against
        2.3 s live. So at ``REPORTING_REALTIME_LIVE_TAIL_MIN`` changes or more, and
        ``REPORTING_REALTIME_LIVE_TAIL_FRACTION`` of the orders or more, a real-time
        read computes its answer live: exact as well, and never slower than live.
        """
        if self.tail_changes is None:
            return False
        minimum, fraction = conf.realtime_live_tail()
        return minimum > 0 and self.tail_changes >= max(minimum, fraction * self.view_orders)

    def as_dict(self) -> dict[str, object]:
        return {
            "strategy": str(self.strategy),
            "as_of": self.as_of.isoformat() if self.as_of else None,
            "view_as_of": self.view_as_of.isoformat() if self.view_as_of else None,
            "changes_since_view": self.changes_since_view,
        }


def read_freshness(strategy: Strategy) -> ReadFreshness:
    """Say how fresh an answer computed with ``strategy`` right now is."""
    # Prepared: every read asks it, and it plans longer than it runs.
    if strategy is Strategy.REALTIME:
        ((view_as_of, checked_at, changes_since, tail, orders),) = raw.rows(
            REALTIME_FRESHNESS_SQL, prepare=True
        )
        return ReadFreshness(
            strategy, checked_at, view_as_of, changes_since if view_as_of else None, checked_at, tail, orders
        )
    ((view_as_of, checked_at, changes_since),) = raw.rows(FRESHNESS_SQL, prepare=True)
    if strategy is Strategy.LIVE:
        return ReadFreshness(strategy, checked_at, None, None, checked_at)
    return ReadFreshness(strategy, view_as_of, view_as_of, changes_since if view_as_of else None, checked_at)


@dataclass(frozen=True)
class Freshness:
    """How fresh the materialized views are.

    Attributes:
        as_of: when the views were last known exact: the snapshot time of the
            latest refresh, or of a later check that found nothing changed.
            Everything committed before it is in them. ``None``: no refresh has
            succeeded yet.
        snapshot_at: the snapshot time of the latest successful refresh.
        checked_at: the database's clock when this was read.
        changes_since: changes since that snapshot (rows written to the source
            tables; a truncate counts as one); ``None`` when there is no snapshot.
        last_runs: the latest refresh runs, newest first.
        on_replica: read from a streaming replica (a hot standby).
        replay_lag: on a replica, the age of the last transaction it replayed:
            how far behind the primary it may be (it also grows while the primary
            is idle, when nothing is missing). ``None`` on the primary.
        folded_at: the latest fold's snapshot time (the refresh's before the first
            fold): everything committed before it is in the views and their
            overlay. Real-time reads recompute what changed since.
        overlay_orders: the orders changed since the refresh that the overlay holds.
    """

    as_of: dt.datetime | None
    checked_at: dt.datetime
    changes_since: int | None
    last_runs: list[RefreshRunSummary]
    snapshot_at: dt.datetime | None = None
    on_replica: bool = False
    replay_lag: dt.timedelta | None = None
    folded_at: dt.datetime | None = None
    overlay_orders: int = 0

    @property
    def age(self) -> dt.timedelta | None:
        return None if self.as_of is None else self.checked_at - self.as_of

    @property
    def fold_age(self) -> dt.timedelta | None:
        return None if self.folded_at is None else self.checked_at - self.folded_at

    def overlay_outgrown(self) -> str | None:
        """Why the overlay is too large, or ``None``.

        Past ``REPORTING_COMPACT_OVERLAY_ORDERS`` the scheduler refreshes at once;
        past twice that, refreshes are failing or not keeping up. Reads stay exact,
        but each fold and read does more, and the views fall behind.
        """
        limit = conf.compact_overlay_orders()
        if limit and self.overlay_orders > 2 * limit:
            return (
                f"the overlay holds {self.overlay_orders:,} orders, more than twice "
                f"REPORTING_COMPACT_OVERLAY_ORDERS ({limit:,}): refreshes are not keeping up or are failing"
            )
        return None


def freshness(*, runs: int = 5) -> Freshness:
    """Say how fresh the materialized views are, with the latest refresh runs.

    Args:
        runs: how many of the latest refresh runs to include.
    """
    alias = read_database()
    with connections[alias].cursor() as cursor:
        cursor.execute(REPLICA_FRESHNESS_SQL)
        (as_of, checked_at, changes_since, on_replica, replay_lag, snapshot_at, folded_at, overlay_orders) = (
            cursor.fetchone()
        )
    last_runs = [
        RefreshRunSummary.of(run)
        for run in RefreshRun.objects.using(alias).only(*refresh_log.FIELDS).order_by("-id")[:runs]
    ]
    return Freshness(
        as_of=as_of,
        checked_at=checked_at,
        changes_since=changes_since if as_of is not None else None,
        last_runs=last_runs,
        snapshot_at=snapshot_at,
        on_replica=on_replica,
        replay_lag=replay_lag,
        folded_at=folded_at,
        overlay_orders=overlay_orders,
    )


@dataclass(frozen=True)
class LockHolder:
    """The session, or the prepared transaction, that holds a lock a refresh or a fold needs.

    A prepared transaction (``PREPARE TRANSACTION``) keeps its locks with no
    session: ``pid`` is then ``None`` and ``prepared`` is its name (its gid).
    """

    pid: int | None
    role: str
    application: str
    since: dt.datetime | None
    state: str | None = None
    query_start: dt.datetime | None = None
    prepared: str | None = None

    def __str__(self) -> str:
        since = f", since {self.since.isoformat(timespec='seconds')}" if self.since else ""
        if self.prepared is not None:
            return (
                f"prepared transaction {self.prepared!r} (role {self.role}{since}, no session: "
                f"ROLLBACK PREPARED {self.prepared!r} ends it)"
            )
        state = f", state {self.state}" if self.state else ""
        started = self.query_start.isoformat(timespec="seconds") if self.query_start else None
        query = f", query started {started}" if started else ""
        return f"pid {self.pid} (role {self.role}, application {self.application!r}{state}{since}{query})"


# Who holds a lock on a lock table that a refresh or a fold would wait for (each
# takes EXCLUSIVE): anything but ACCESS SHARE there is someone in the way. A
# prepared transaction holds its locks without a session (no pid); its own
# transaction-id lock, in the same virtual transaction, names it.
LOCK_HOLDER_SQL = """
SELECT l.pid, coalesce(a.usename, p.owner, '?'), coalesce(a.application_name, ''),
       coalesce(a.xact_start, p.prepared), a.state, a.query_start, p.gid
FROM pg_locks AS l
LEFT JOIN pg_stat_activity AS a ON a.pid = l.pid
LEFT JOIN LATERAL (
    SELECT x.gid, x.owner, x.prepared
    FROM pg_locks AS t JOIN pg_prepared_xacts AS x ON x.transaction = t.transactionid
    WHERE l.pid IS NULL AND t.pid IS NULL AND t.locktype = 'transactionid'
      AND t.virtualtransaction = l.virtualtransaction
    LIMIT 1
) AS p ON true
WHERE l.locktype = 'relation' AND l.relation = %s::regclass AND l.granted
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND l.mode NOT IN ('AccessShareLock')
ORDER BY coalesce(a.xact_start, p.prepared) NULLS LAST
LIMIT 1
"""


def lock_holder(table: str, *, using: str = "default") -> LockHolder | None:
    """Return who holds a lock on ``table`` that its EXCLUSIVE lock would wait for, or ``None``.

    Read on the primary: locks are not replicated.
    """
    with connections[using].cursor() as cursor:
        cursor.execute(LOCK_HOLDER_SQL, [table])
        row = cursor.fetchone()
    return LockHolder(*row) if row else None


def refresh_lock_holder(*, using: str = "default") -> LockHolder | None:
    """Return the session (or prepared transaction) that holds the refresh lock, or ``None`` if nobody does.

    Read on the primary: locks are not replicated.
    """
    return lock_holder(RefreshLock._meta.db_table, using=using)
