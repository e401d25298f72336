"""The definition of "latest", computed in Python: what every read strategy must return.

Free of any schema (the example shop's, Oscar's, the sensors'): rows in, answers out.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass


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
