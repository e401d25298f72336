"""The definition of "latest", computed in Python: what every read strategy must return.

Every brute force of the tests lives here, free of any schema (the example shop's,
Oscar's, the sensors'): rows in, answers out. The tests read their raw rows
themselves and compare the product's answers with these.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class StatusRow:
    id: int
    order_id: int
    created: dt.datetime
    status: str


def brute_force_latest(rows: Sequence[StatusRow]) -> dict[int, StatusRow]:
    """The latest status of each order by the definition: greatest (created, id)."""
    latest: dict[int, StatusRow] = {}
    for row in rows:
        best = latest.get(row.order_id)
        if best is None or (row.created, row.id) > (best.created, best.id):
            latest[row.order_id] = row
    return latest


def brute_force_since(rows: Sequence[StatusRow]) -> dict[int, dt.datetime]:
    """When each order entered its latest status: the ``created`` of the first row of the
    final run of rows with that status, the rows in the order of (created, id)."""
    history: dict[int, list[StatusRow]] = {}
    for row in sorted(rows, key=lambda r: (r.created, r.id)):
        history.setdefault(row.order_id, []).append(row)
    since = {}
    for order_id, ordered in history.items():
        first = len(ordered) - 1
        while first > 0 and ordered[first - 1].status == ordered[-1].status:
            first -= 1
        since[order_id] = ordered[first].created
    return since


def brute_force_lists(
    rows: Sequence[StatusRow], statuses: Sequence[str], *, since: bool = False
) -> dict[str, list[tuple]]:
    """Per status, ``(order_id, status_id, status, status_created)`` of the orders whose
    latest status it is, most recent latest row first: what every list read must return.

    With ``since``, each tuple ends with ``status_since`` too (:func:`brute_force_since`).
    """
    latest = brute_force_latest(rows).values()
    entered = brute_force_since(rows) if since else {}
    return {
        status: sorted(
            [
                (r.order_id, r.id, r.status, r.created, *([entered[r.order_id]] if since else []))
                for r in latest
                if r.status == status
            ],
            key=lambda t: (t[3], t[0]),
            reverse=True,
        )
        for status in statuses
    }


def brute_force_found(rows: Sequence[StatusRow]) -> dict[str, int]:
    """Keys per latest status, for every status some key's latest row has."""
    found: dict[str, int] = {}
    for row in brute_force_latest(rows).values():
        found[row.status] = found.get(row.status, 0) + 1
    return found


def brute_force_counts(
    rows: Sequence[StatusRow], keys: Iterable[Any], statuses: Sequence[str]
) -> dict[str, int]:
    """Per status of ``statuses``, the keys whose latest row has it (zero included); ``"none"``:
    the ``keys`` without any row."""
    found = brute_force_found(rows)
    counts = {status: found.get(status, 0) for status in statuses}
    counts["none"] = len(set(keys) - set(brute_force_latest(rows)))
    return counts


def brute_force_daily(
    rows: Sequence[StatusRow], created: Mapping[Any, dt.datetime], *, none: str | None = "none"
) -> dict[tuple, int]:
    """Keys per (day of their creation in UTC, latest status), the keys without rows under ``none``."""
    latest = brute_force_latest(rows)
    daily: dict[tuple, int] = {}
    for key, at in created.items():
        day = (at.astimezone(dt.UTC).date(), latest[key].status if key in latest else none)
        daily[day] = daily.get(day, 0) + 1
    return daily


def brute_force_report(
    rows: Sequence[StatusRow], created: Mapping[Any, dt.datetime], statuses: Sequence[str]
) -> dict[str, dict]:
    """Every report over ``rows`` and the keys created at ``created``, by the definition: the lists
    (with ``status_since``), the counts, the daily counts, the status changes per day and the
    weekly times to a final status."""
    return {
        "lists": brute_force_lists(rows, statuses, since=True),
        "counts": brute_force_counts(rows, created, statuses),
        "daily": brute_force_daily(rows, created),
        "transitions": brute_force_transitions(rows),
        "times": brute_force_transition_times(rows),
    }


def brute_force_by_key(rows: Sequence[StatusRow], created: Mapping[Any, dt.datetime]) -> dict[str, Any]:
    """Every latest row as ``(key, row id, status, created, since)`` in key order, and the keys of
    ``created`` per latest status and per (day, latest status), the keys without rows under ``None``."""
    latest, since = brute_force_latest(rows), brute_force_since(rows)
    counts: dict[str | None, int] = {}
    for key in created:
        status = latest[key].status if key in latest else None
        counts[status] = counts.get(status, 0) + 1
    return {
        "rows": sorted((r.order_id, r.id, r.status, r.created, since[r.order_id]) for r in latest.values()),
        "counts": counts,
        "daily": brute_force_daily(rows, created, none=None),
    }


def brute_force_transitions(rows: Sequence[StatusRow]) -> dict[tuple, int]:
    """Status changes per (day, from, to), by the definition: each row whose previous row
    (by (created, id)) of the same order has another status."""
    counts: dict[tuple, int] = {}
    for before, row, _first in _changes(rows):
        key = (row.created.astimezone(dt.UTC).date(), before.status, row.status)
        counts[key] = counts.get(key, 0) + 1
    return counts


def brute_force_transition_times(rows: Sequence[StatusRow]) -> dict[tuple, tuple]:
    """Per (week's Monday, to status) for complete and cancelled: (changes, median, p90) of the
    time from the order's first row, percentiles interpolated like PostgreSQL's percentile_cont."""
    durations: dict[tuple, list[dt.timedelta]] = {}
    for _before, row, first in _changes(rows):
        if row.status in ("complete", "cancelled"):
            day = row.created.astimezone(dt.UTC).date()
            durations.setdefault((day - dt.timedelta(days=day.weekday()), row.status), []).append(
                row.created - first.created
            )
    return {
        key: (len(values), _percentile(sorted(values), 0.5), _percentile(sorted(values), 0.9))
        for key, values in durations.items()
    }


def _changes(rows: Sequence[StatusRow]) -> list[tuple[StatusRow, StatusRow, StatusRow]]:
    """(previous row, row, order's first row) for every row that changes its order's status."""
    histories: dict[int, list[StatusRow]] = {}
    for row in rows:
        histories.setdefault(row.order_id, []).append(row)
    changes = []
    for history in histories.values():
        history.sort(key=lambda r: (r.created, r.id))
        changes += [(a, b, history[0]) for a, b in itertools.pairwise(history) if a.status != b.status]
    return changes


def _percentile(values: list[dt.timedelta], fraction: float) -> dt.timedelta:
    position = fraction * (len(values) - 1)
    low = math.floor(position)
    high = min(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (position - low)
