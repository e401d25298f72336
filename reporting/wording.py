"""What people read: how fresh an answer is, what the status changes are called, the BI comments' nouns.

One home for these words, so that the dashboard, an order's page, the commands
and the BI catalogs say the same thing, and say it in the declared source's
words (``REPORTING_SOURCE``), not the example shop's.
"""

from __future__ import annotations

__all__ = [
    "EXAMPLE_TRANSITIONS",
    "clock",
    "comment",
    "freshness_words",
    "span",
    "transition_labels",
    "views_freshness_words",
]

import datetime as dt
import re

from reporting.choices import Strategy
from reporting.declaration import noun, noun_plural, status_label, statuses
from reporting.selectors.freshness import Freshness, ReadFreshness

# The changes the example shop watches, by what they mean to it. Only a
# declaration of exactly its three statuses gets these names.
EXAMPLE_TRANSITIONS = [
    ("Paid", ("pending", "complete")),
    ("Refunded", ("complete", "cancelled")),
    ("Failed or abandoned", ("pending", "cancelled")),
]
EXAMPLE_STATUSES = frozenset({"pending", "complete", "cancelled"})


def span(value: dt.timedelta | None) -> str:
    """A duration for people: "45 s", "12 min", "3 h 05 min", "4 d 7 h"; "-" for none."""
    if value is None:
        return "-"
    seconds = max(0, round(value.total_seconds()))
    if seconds < 60:
        return f"{seconds} s"
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if hours < 1:
        return f"{minutes} min"
    if days < 1:
        return f"{hours} h {minutes % 60:02d} min"
    return f"{days} d {hours % 24} h"


def clock(moment: dt.datetime, *, today: dt.datetime | None = None) -> str:
    """A moment in UTC: "14:03:07 UTC" on the day of ``today``, else with its date."""
    moment = moment.astimezone(dt.UTC)
    if today is not None and moment.date() == today.astimezone(dt.UTC).date():
        return f"{moment:%H:%M:%S} UTC"
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC"


def _words(
    strategy: Strategy, *, as_of: dt.datetime | None, checked_at: dt.datetime, changes_since: int | None
) -> str:
    if strategy is not Strategy.SNAPSHOT:
        # live and realtime answers are computed at the read: exact at that moment.
        return f"exact now (checked {clock(checked_at, today=checked_at)})"
    if as_of is None:
        return "not refreshed yet: the views miss every change since they were built"
    age = f"as of {clock(as_of, today=checked_at)} ({span(checked_at - as_of)} ago)"
    if not changes_since:
        return f"{age}; no changes since"
    # "changes", never "pending": a status may be called pending.
    return f"{age}; {changes_since:,} change{'' if changes_since == 1 else 's'} since, not included"


def freshness_words(fresh: ReadFreshness) -> str:
    """How fresh one answer is, in the words every page and command uses.

    ``live`` and ``realtime``: "exact now (checked 14:03:07 UTC)". ``snapshot``:
    "as of 14:00:01 UTC (3 min ago); 1,091 changes since, not included" (or "no
    changes since"). Lower-case: a page capitalises it where a sentence starts.

    Args:
        fresh: any answer's ``freshness``.
    """
    return _words(
        Strategy(fresh.strategy),
        as_of=fresh.view_as_of,
        checked_at=fresh.checked_at,
        changes_since=fresh.changes_since_view,
    )


def views_freshness_words(fresh: Freshness) -> str:
    """How fresh the materialized views are: what :func:`freshness_words` says of a ``snapshot`` read."""
    return _words(
        Strategy.SNAPSHOT, as_of=fresh.as_of, checked_at=fresh.checked_at, changes_since=fresh.changes_since
    )


def transition_labels() -> list[tuple[str, tuple[str, str]]]:
    """The status changes the dashboard lists, each with its name, as ``(label, (before, after))``.

    The example shop's three ("Paid", "Refunded", "Failed or abandoned") when the
    declared statuses are exactly its own; otherwise every change between declared
    statuses, named by their labels ("New → Open").
    """
    from reporting.selectors.transitions import transition_kinds

    if set(statuses()) == EXAMPLE_STATUSES:
        return EXAMPLE_TRANSITIONS
    return [
        (f"{status_label(before)} → {status_label(after)}", (before, after))
        for before, after in transition_kinds()
    ]


# The entity in a comment: "order", "orders", "order's", capitalised or not, as a
# word of its own (not "order_id", not the view "reporting.orders").
_ENTITY = re.compile(r"(?<![\w.])([Oo])rder(s?)(?!\w)")


def comment(text: str) -> str:
    """A BI comment in the declared entity's words: "Each order's latest status" for a ticket desk
    reads "Each ticket's latest status".

    Comments (``db_table_comment``, ``db_comment`` in :mod:`reporting.matviews`) say
    "order" for a key of the declared source; they never use the word for a sequence.
    """
    singular, plural = noun(), noun_plural()

    def replace(match: re.Match[str]) -> str:
        words = plural if match.group(2) else singular
        return words[:1].upper() + words[1:] if match.group(1) == "O" else words

    return _ENTITY.sub(replace, text)
