"""Geometry of the dashboard's charts, drawn in HTML and CSS by the server (no JavaScript).

HTML rather than SVG: a chart then resizes with the page while its text keeps
its size (an SVG's text shrinks with its viewBox, unreadable on a phone).
"""

from __future__ import annotations

__all__ = ["COLORS", "TEXT_ON", "Bar", "Column", "bar_chart", "color", "order", "stacked_columns", "text_on"]

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

# One colour per status, used by every chart, legend and badge: the Okabe-Ito
# palette, told apart by the common kinds of colour blindness. Pending is also
# striped, so that no meaning rests on colour alone.
COLORS = {"complete": "#0072B2", "pending": "#E69F00", "cancelled": "#D55E00", "none": "#6B7280"}
# Text on each colour with a WCAG 2.1 AA contrast (4.5:1 or more).
TEXT_ON = {"complete": "#FFFFFF", "pending": "#111827", "cancelled": "#111827", "none": "#FFFFFF"}
# Other declared statuses take the rest of the palette in turn, each with its text colour.
PALETTE = [("#009E73", "#111827"), ("#56B4E9", "#111827"), ("#CC79A7", "#111827"), ("#F0E442", "#111827")]


def order(found: Iterable[str] = ()) -> list[str]:
    """The statuses in the order the charts stack them: the declared ones, the undeclared ones
    among ``found`` (values the history holds that the declaration does not list), then ``none``.

    The example's three keep the order they always had (complete at the bottom).
    """
    from reporting.declaration import statuses

    declared = list(statuses())
    undeclared = sorted(set(found) - set(declared) - {"none"})
    if set(declared) == {"pending", "complete", "cancelled"}:
        declared = ["complete", "pending", "cancelled"]
    return [*declared, *undeclared, "none"]


def _palette(status: str) -> tuple[str, str]:
    if status in COLORS:
        return COLORS[status], TEXT_ON[status]
    others = [s for s in order() if s not in COLORS]
    return (
        PALETTE[others.index(status) % len(PALETTE)]
        if status in others
        else (COLORS["none"], TEXT_ON["none"])
    )


def color(status: str) -> str:
    """The colour of a status in every chart, legend and badge."""
    return _palette(status)[0]


def text_on(status: str) -> str:
    """The colour of text written on :func:`color` of ``status``."""
    return _palette(status)[1]


@dataclass(frozen=True)
class Bar:
    label: str
    value: int
    percent: float
    #: Width of the bar, in percent of the largest.
    width: float
    color: str


def bar_chart(counts: dict[str, int]) -> list[Bar]:
    """Horizontal bars, one per status, scaled to the largest; ``none`` only if there are such orders."""
    largest = max(counts.values(), default=0) or 1
    total = sum(counts.values()) or 1
    return [
        Bar(
            label=status,
            value=counts.get(status, 0),
            percent=100 * counts.get(status, 0) / total,
            width=100 * counts.get(status, 0) / largest,
            color=color(status),
        )
        for status in order(counts)
        if status != "none" or counts.get("none", 0)
    ]


@dataclass(frozen=True)
class Segment:
    status: str
    value: int
    #: Height, in percent of the chart's top.
    height: float
    color: str


@dataclass(frozen=True)
class Column:
    day: dt.date
    total: int
    segments: list[Segment]
    label: str
    #: Today's column: the day is not over, its count is partial.
    partial: bool


def nice_step(value: int) -> int:
    """The smallest round number at or above ``value``: 1, 2, 5, 10, 20, 25, 50, 100, 200, 250 ..."""
    power = 1
    while True:
        for step in (power, 2 * power, 5 * power // 2, 5 * power):
            if step >= value and step == int(step):
                return step
        power *= 10


def stacked_columns(
    days: list[dt.date], series: dict[str, list[int]], *, today: dt.date, label_every: int = 7
) -> tuple[list[Column], list[int]]:
    """One stacked column per day, statuses in a fixed order.

    Returns:
        The columns, and the scale's ticks from the top down (four steps to a round top).
    """
    totals = [sum(series[s][i] for s in series) for i in range(len(days))]
    # Four gridline steps of a round size: 0, 10, 20, 30, 40 rather than 0 and 37.
    step = nice_step(-(-max(max(totals, default=0), 1) // 4))
    top = 4 * step
    columns = []
    for i, day in enumerate(days):
        segments = [
            Segment(status, value, 100 * value / top, color(status))
            for status in order(series)
            if (value := series.get(status, [0] * len(days))[i])
        ]
        last = i == len(days) - 1
        label = day.strftime("%m-%d") if (len(days) - 1 - i) % label_every == 0 else ""
        columns.append(Column(day, totals[i], segments, label, partial=last and day == today))
    return columns, [step * k for k in (4, 3, 2, 1, 0)]
