"""Reads: is this process able to serve reports? For load balancers and orchestrators."""

from __future__ import annotations

__all__ = ["Readiness", "audit_problem", "change_log_check", "readiness"]

import datetime as dt
import logging
from dataclasses import dataclass, field

from django.db import DatabaseError, connections

from reporting.audit_log import AuditRunSummary
from reporting.declaration import noun, noun_plural, source
from reporting.matviews import reporting_views
from reporting.routers import read_database
from reporting.selectors.audit import audit_last
from reporting.source_install import change_log_problems
from reporting.sql_files import in_schema

logger = logging.getLogger(__name__)

# Every materialized view populated, and the freshness, in one round trip.
READINESS_SQL = in_schema("""
SELECT (SELECT count(*) FILTER (WHERE NOT ispopulated) FROM pg_matviews
        WHERE schemaname || '.' || matviewname = ANY(%s)),
       (SELECT count(*) FROM pg_matviews WHERE schemaname || '.' || matviewname = ANY(%s)),
       f.age
FROM reporting.freshness AS f
""")


@dataclass(frozen=True)
class Readiness:
    """The checks behind ``/readyz``; ``ready`` when every one passed."""

    database: bool
    views_populated: bool
    fresh: bool
    age: dt.timedelta | None = None
    problems: list[str] = field(default_factory=list)
    #: Every change-log trigger fires on every write (a write it misses leaves real-time reads wrong).
    change_log: bool = True
    #: The latest exactness audit found every key it checked exact (or none ran yet).
    audit: bool = True

    @property
    def ready(self) -> bool:
        return self.database and self.views_populated and self.fresh and self.change_log and self.audit


def audit_problem(run: AuditRunSummary | None) -> str | None:
    """What the latest audit found wrong, in a line, or ``None`` (nothing, or no audit yet)."""
    if run is None or not run.mismatches:
        return None
    keys = ", ".join(run.mismatched_keys[:10])
    more = f" and {run.mismatches - 10} more" if run.mismatches > 10 else ""
    return (
        f"{run.mismatches} {noun() if run.mismatches == 1 else noun_plural()} of {run.keys_checked:,} "
        f"differed from the history in real-time reads at {run.finished.isoformat(timespec='seconds')} "
        f"({keys}{more}): marked changed and recomputed; not ready until an audit finds every key exact"
    )


def change_log_check(*, using: str | None = None) -> list[str]:
    """What keeps writes to the declared tables out of the change log (empty: nothing).

    The scheduler mends it at its next fold (``services.change_log_repair``).
    """
    with connections[using or read_database()].cursor() as cursor:
        return change_log_problems(cursor, source())


def readiness(*, max_age: float) -> Readiness:
    """Check that the reporting database answers, its views are populated and fresh enough.

    Args:
        max_age: seconds; views exact as of longer ago than this are not fresh.
    """
    names = [view._meta.db_table for view in reporting_views()]
    connection = connections[read_database()]
    try:
        with connection.cursor() as cursor:
            cursor.execute(READINESS_SQL, [names, names])
            unpopulated, found, age = cursor.fetchone()
            unlogged = change_log_problems(cursor, source())
        audited = audit_problem(audit_last())
    except DatabaseError as exc:
        # Anyone may ask: the cause (hosts, paths) goes to the log, not to the answer.
        logger.warning("Not ready: the reporting database did not answer: %s", exc)
        # A probe must see the database come back: no broken connection kept for the next one.
        connection.close_if_unusable_or_obsolete()
        return Readiness(
            False, False, False, problems=["database: did not answer"], change_log=False, audit=False
        )
    problems = []
    populated = unpopulated == 0 and found == len(names)
    if not populated:
        problems.append(f"views: {found - unpopulated} of {len(names)} materialized views populated")
    fresh = age is not None and age.total_seconds() <= max_age
    if not fresh:
        problems.append(
            "freshness: never refreshed"
            if age is None
            else f"freshness: as of {age.total_seconds():.0f} s ago, more than {max_age:g} s"
        )
    problems += [f"change log: {problem}" for problem in unlogged]
    if audited is not None:
        problems.append(f"audit: {audited}")
    return Readiness(True, populated, fresh, age, problems, change_log=not unlogged, audit=audited is None)
