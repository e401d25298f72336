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


def brute_force_lists(rows: Sequence[StatusRow], statuses: Sequence[str]) -> dict[str, list[tuple]]:
    """Per status, ``(order_id, status_id, status, status_created)`` of the orders whose
    latest status it is, most recent status change first: what every list read must return."""
    latest = brute_force_latest(rows).values()
    return {
        status: sorted(
            [(r.order_id, r.id, r.status, r.created) for r in latest if r.status == status],
            key=lambda t: (t[3], t[0]),
            reverse=True,
        )
        for status in statuses
    }
