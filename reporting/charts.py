"""Geometry of the dashboard's charts, for inline SVG rendered by the server (no JavaScript)."""

from __future__ import annotations

__all__ = ["COLORS", "Bar", "Column", "bar_chart", "stacked_columns"]

import datetime as dt
from dataclasses import dataclass

# One colour per status, used by every chart, legend and badge.
COLORS = {"complete": "#15803d", "pending": "#d97706", "cancelled": "#b91c1c", "none": "#6b7280"}
ORDER = ["complete", "pending", "cancelled", "none"]


@dataclass(frozen=True)
class Bar:
    label: str
    value: int
    percent: float
    y: float
    width: float
    color: str


def bar_chart(counts: dict[str, int], *, width: float = 250, row: float = 34) -> list[Bar]:
    """Horizontal bars, one per status, scaled to the largest count."""
    largest = max(counts.values(), default=0) or 1
    total = sum(counts.values()) or 1
    return [
        Bar(
            label=status,
            value=counts.get(status, 0),
            percent=100 * counts.get(status, 0) / total,
            y=i * row,
            width=max(0.0, width * counts.get(status, 0) / largest),
            color=COLORS[status],
        )
        for i, status in enumerate(ORDER)
    ]


@dataclass(frozen=True)
class Segment:
    status: str
    value: int
    y: float
    height: float
    color: str


@dataclass(frozen=True)
class Column:
    day: dt.date
    x: float
    width: float
    total: int
    segments: list[Segment]
    label: str


def stacked_columns(
    days: list[dt.date], series: dict[str, list[int]], *, width: float = 720, height: float = 180
) -> tuple[list[Column], int]:
    """One stacked column per day, statuses in a fixed order; returns the columns and the scale's top."""
    totals = [sum(series[s][i] for s in series) for i in range(len(days))]
    top = max(totals, default=0) or 1
    step = width / max(len(days), 1)
    columns = []
    for i, day in enumerate(days):
        y = height
        segments = []
        for status in ORDER:
            value = series.get(status, [0] * len(days))[i]
            h = height * value / top
            y -= h
            segments.append(Segment(status, value, y, h, COLORS[status]))
        label = day.strftime("%d %b") if i % 5 == 0 or i == len(days) - 1 else ""
        columns.append(Column(day, i * step + 1, max(step - 2, 1), totals[i], segments, label))
    return columns, top
