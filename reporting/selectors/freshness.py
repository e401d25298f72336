"""Reads: how fresh the materialized views are, and how fresh one answer is."""

from __future__ import annotations

__all__ = ["Freshness", "ReadFreshness", "RefreshRunSummary", "freshness", "read_freshness"]

import datetime as dt
from dataclasses import dataclass

from django.db import connections

from reporting.choices import Strategy
from reporting.models import RefreshRun
from reporting.routers import read_database

# The same view that BI dashboards read (views_sql/freshness_v1.sql).
FRESHNESS_SQL = "SELECT as_of, checked_at, changes_since FROM reporting.freshness"
REPLICA_FRESHNESS_SQL = (
    "SELECT as_of, checked_at, changes_since, on_replica, replay_lag FROM reporting.freshness"
)


@dataclass(frozen=True)
class ReadFreshness:
    """How fresh one answer is.

    Attributes:
        strategy: how it was computed.
        as_of: the moment the answer is exact for. For ``snapshot``, the snapshot
            time of the refresh behind it: everything committed before it is in.
            For ``live`` and ``realtime``, the time of the read.
        view_as_of: the snapshot time of the materialized views (``None`` for
            ``live`` reads, or before the first refresh).
        changes_since_view: changes (rows written to the source tables) since the
            views' snapshot: missing from a ``snapshot`` answer, corrected on the fly
            in a ``realtime`` one.
    """

    strategy: Strategy
    as_of: dt.datetime | None
    view_as_of: dt.datetime | None
    changes_since_view: int | None

    def as_dict(self) -> dict[str, object]:
        return {
            "strategy": str(self.strategy),
            "as_of": self.as_of.isoformat() if self.as_of else None,
            "view_as_of": self.view_as_of.isoformat() if self.view_as_of else None,
            "changes_since_view": self.changes_since_view,
        }


def read_freshness(strategy: Strategy) -> ReadFreshness:
    """Say how fresh an answer computed with ``strategy`` right now is."""
    with connections[read_database()].cursor() as cursor:
        cursor.execute(FRESHNESS_SQL)
        view_as_of, checked_at, changes_since = cursor.fetchone()
    if strategy is Strategy.LIVE:
        return ReadFreshness(strategy, checked_at, None, None)
    as_of = view_as_of if strategy is Strategy.SNAPSHOT else checked_at
    return ReadFreshness(strategy, as_of, view_as_of, changes_since if view_as_of else None)


@dataclass(frozen=True)
class RefreshRunSummary:
    """One row of the refresh log."""

    id: int
    trigger: str
    outcome: str
    started: dt.datetime
    snapshot_at: dt.datetime | None
    duration: dt.timedelta | None
    rows: int | None
    changes_absorbed: int | None
    error: str


@dataclass(frozen=True)
class Freshness:
    """How fresh the materialized views are.

    Attributes:
        as_of: when the snapshot that the views hold was taken: everything committed
            before it is in them. ``None``: no refresh has succeeded yet.
        checked_at: the database's clock when this was read.
        changes_since: changes since that snapshot (rows written to the source
            tables; a truncate counts as one); ``None`` when there is no snapshot.
        last_runs: the latest refresh runs, newest first.
        on_replica: read from a streaming replica (a hot standby).
        replay_lag: on a replica, the age of the last transaction it replayed:
            how far behind the primary it may be (it also grows while the primary
            is idle, when nothing is missing). ``None`` on the primary.
    """

    as_of: dt.datetime | None
    checked_at: dt.datetime
    changes_since: int | None
    last_runs: list[RefreshRunSummary]
    on_replica: bool = False
    replay_lag: dt.timedelta | None = None

    @property
    def age(self) -> dt.timedelta | None:
        return None if self.as_of is None else self.checked_at - self.as_of


def freshness(*, runs: int = 5) -> Freshness:
    """Say how fresh the materialized views are, with the latest refresh runs.

    Args:
        runs: how many of the latest refresh runs to include.
    """
    alias = read_database()
    with connections[alias].cursor() as cursor:
        cursor.execute(REPLICA_FRESHNESS_SQL)
        as_of, checked_at, changes_since, on_replica, replay_lag = cursor.fetchone()
    last_runs = [
        RefreshRunSummary(**row)
        for row in RefreshRun.objects.using(alias)
        .order_by("-id")
        .values(
            "id",
            "trigger",
            "outcome",
            "started",
            "snapshot_at",
            "duration",
            "rows",
            "changes_absorbed",
            "error",
        )[:runs]
    ]
    return Freshness(
        as_of=as_of,
        checked_at=checked_at,
        changes_since=changes_since if as_of is not None else None,
        last_runs=last_runs,
        on_replica=on_replica,
        replay_lag=replay_lag,
    )
