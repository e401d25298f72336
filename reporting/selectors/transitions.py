"""Reads: status analytics, how orders move between statuses and how long they take.

A *transition* is a status row whose previous row (in the order that defines
the latest status: ``created``, then ``id``) records another status: an order's
first row and a row that repeats the status before it change nothing. The
materialized view ``order_status_transitions`` holds them as of the refresh;
the ``_live`` views correct it by the orders changed since (views_sql/), like
the counts.
"""

from __future__ import annotations

__all__ = [
    "MAX_WEEKS",
    "TransitionCounts",
    "TransitionTimes",
    "WeekTimes",
    "order_transition_times",
    "order_transitions_daily",
    "timed_statuses",
    "transition_kinds",
]

import datetime as dt
import itertools
from dataclasses import dataclass

from django.utils import timezone

from reporting.choices import Strategy
from reporting.declaration import statuses
from reporting.exceptions import InvalidParameterError
from reporting.selectors import sql as raw
from reporting.selectors.freshness import ReadFreshness, read_freshness
from reporting.selectors.orders import MAX_DAYS, _strategy, undeclared_status_counts
from reporting.sql_files import in_schema, view_sql


def transition_kinds() -> list[tuple[str, str]]:
    """Every kind of change between declared statuses, as (from, to): the series of TransitionCounts."""
    return list(itertools.permutations(statuses(), 2))


def timed_statuses() -> tuple[str, ...]:
    """The statuses whose time to reach :func:`order_transition_times` measures: all but the first declared.

    The first is where a key starts (an order's ``pending``); the time to reach each
    later one counts from the key's first row.
    """
    return statuses()[1:]


MAX_WEEKS = 520

# The live strategy recomputes from the whole status history: its cost grows
# with the data (reporting.order_status_history is that computation as a view).
DAILY_SQL = {
    Strategy.SNAPSHOT: in_schema(
        "SELECT day, from_status, to_status, transitions FROM reporting.order_transitions_daily "
        "WHERE day >= %(first)s AND day <= %(last)s"
    ),
    Strategy.REALTIME: in_schema(
        "SELECT day, from_status, to_status, transitions FROM reporting.order_transitions_daily_live "
        "WHERE day >= %(first)s AND day <= %(last)s"
    ),
    Strategy.LIVE: in_schema("""
        SELECT (h.created AT TIME ZONE 'UTC')::date, h.previous_status, h.status, count(*)
        FROM reporting.order_status_history AS h
        WHERE h.previous_status <> h.status
          AND (h.created AT TIME ZONE 'UTC')::date BETWEEN %(first)s AND %(last)s
        GROUP BY 1, 2, 3
    """),
}

# The weekly times read the real-time view for realtime, its materialized base
# for snapshot, and for live that base's definition, computed over the whole
# history at query time.
_TIMES_SQL = """
    SELECT t.week, t.to_status, count(*),
           percentile_cont(0.5) WITHIN GROUP (ORDER BY t.since_first),
           percentile_cont(0.9) WITHIN GROUP (ORDER BY t.since_first)
    FROM {source} AS t
    WHERE t.to_status = ANY(%(timed)s) AND t.week >= %(first)s AND t.week <= %(last)s
    GROUP BY t.week, t.to_status
"""
TIMES_SQL = {
    Strategy.SNAPSHOT: in_schema(_TIMES_SQL.format(source="reporting.order_status_transitions")),
    Strategy.REALTIME: in_schema(
        "SELECT week, to_status, transitions, median, p90 FROM reporting.order_transition_times_weekly_live "
        "WHERE to_status = ANY(%(timed)s) AND week >= %(first)s AND week <= %(last)s"
    ),
    # Every change, computed from the history now: the definition of the materialized view.
    Strategy.LIVE: _TIMES_SQL.format(source=f"({view_sql('order_status_transitions')})"),
}


@dataclass(frozen=True)
class TransitionCounts:
    """Status changes per day (UTC) and kind, oldest day first."""

    days: list[dt.date]
    #: (from, to) -> one count per day of ``days``, for every kind of :func:`transition_kinds`.
    series: dict[tuple[str, str], list[int]]
    freshness: ReadFreshness

    def totals(self) -> dict[tuple[str, str], int]:
        return {kind: sum(counts) for kind, counts in self.series.items()}


@dataclass(frozen=True)
class WeekTimes:
    """How long the changes into one status took, in one week."""

    transitions: int
    #: ``None`` in a week without any such change.
    median: dt.timedelta | None
    p90: dt.timedelta | None


@dataclass(frozen=True)
class TransitionTimes:
    """Time from an order's first status to ``complete`` and to ``cancelled``, per week."""

    #: The Monday (UTC) of each week, oldest first.
    weeks: list[dt.date]
    #: status -> one :class:`WeekTimes` per week of ``weeks``.
    series: dict[str, list[WeekTimes]]
    freshness: ReadFreshness


def _day_range(days: int, until: dt.date | None) -> tuple[dt.date, dt.date]:
    if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= MAX_DAYS:
        raise InvalidParameterError("days", days, f"an integer from 1 to {MAX_DAYS}")
    last = until or timezone.now().astimezone(dt.UTC).date()
    return last - dt.timedelta(days=days - 1), last


def order_transitions_daily(
    *, days: int = 30, until: dt.date | None = None, strategy: str | None = None
) -> TransitionCounts:
    """Count the status changes of each kind on each of ``days`` days (UTC) up to ``until``.

    Args:
        days: how many days, ``until`` included (1 to 3660).
        until: the last day; ``None`` for today (UTC).
        strategy: ``live``, ``snapshot`` or ``realtime``; ``None`` for the default.

    Returns:
        Every day of the range (zero on days without changes), a series for every
        kind of change.
    """
    strategy_ = _strategy(strategy)
    first, last = _day_range(days, until)
    freshness = read_freshness(strategy_)
    day_list = [first + dt.timedelta(days=i) for i in range(days)]
    index = {day: i for i, day in enumerate(day_list)}
    series = {kind: [0] * days for kind in transition_kinds()}
    with raw.cursor() as cursor:
        cursor.execute(DAILY_SQL[strategy_], {"first": first, "last": last})
        for day, before, after, n in cursor.fetchall():
            # A change from or to a value the declaration does not list is a kind of its own.
            series.setdefault((before, after), [0] * days)[index[day]] = n
    return TransitionCounts(days=day_list, series=series, freshness=freshness)


def order_transition_times(
    *, weeks: int = 8, until: dt.date | None = None, strategy: str | None = None
) -> TransitionTimes:
    """The median and 90th percentile time to complete and to be cancelled, per week.

    The time of a change is measured from the order's first status row; it counts
    in the week (Monday to Sunday, UTC) of the change. An order that completes
    twice counts twice.

    Args:
        weeks: how many weeks, the one of ``until`` included (1 to 520).
        until: a day of the last week; ``None`` for today (UTC).
        strategy: ``live``, ``snapshot`` or ``realtime``; ``None`` for the default.
    """
    strategy_ = _strategy(strategy)
    if not isinstance(weeks, int) or isinstance(weeks, bool) or not 1 <= weeks <= MAX_WEEKS:
        raise InvalidParameterError("weeks", weeks, f"an integer from 1 to {MAX_WEEKS}")
    last_day = until or timezone.now().astimezone(dt.UTC).date()
    last = last_day - dt.timedelta(days=last_day.weekday())
    week_list = [last - dt.timedelta(weeks=weeks - 1 - i) for i in range(weeks)]
    freshness = read_freshness(strategy_)
    found: dict[tuple[dt.date, str], WeekTimes] = {}
    # The declared statuses but the first, and the undeclared ones that orders are in now.
    timed = [*timed_statuses(), *undeclared_status_counts()]
    with raw.cursor() as cursor:
        cursor.execute(TIMES_SQL[strategy_], {"first": week_list[0], "last": last, "timed": timed})
        for week, status, n, median, p90 in cursor.fetchall():
            found[(week, status)] = WeekTimes(n, median, p90)
    empty = WeekTimes(0, None, None)
    series = {status: [found.get((week, status), empty) for week in week_list] for status in timed}
    return TransitionTimes(weeks=week_list, series=series, freshness=freshness)
