"""Geometry of the dashboard's charts, drawn in HTML and CSS by the server (no JavaScript).

HTML rather than SVG: a chart then resizes with the page while its text keeps
its size (an SVG's text shrinks with its viewBox, unreadable on a phone).
"""

from __future__ import annotations

__all__ = [
    "Bar",
    "Column",
    "Style",
    "bar_chart",
    "color",
    "contrast",
    "order",
    "pattern",
    "stacked_columns",
    "style",
    "text_on",
]

import datetime as dt
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

# Text colours: the page's ink, and white.
DARK = "#111827"
LIGHT = "#FFFFFF"
# WCAG 2.1 AA: normal text needs a contrast of 4.5:1 with its background.
AA = 4.5

# The colours of the statuses, in turn: the Okabe-Ito palette (told apart by the
# common kinds of colour blindness) and Paul Tol's wine. Each takes dark or white
# text at AA contrast (tests/test_charts.py checks it).
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#882255")
# The patterns over them, in turn, so that no meaning rests on colour alone. Seven
# patterns against eight colours: the counts are coprime, so the first 56 statuses
# each get a pair of their own, and the first seven differ in both. Beyond 56 the
# pairs come round again with a wider spacing, so any number of statuses stays
# distinct (though telling the spacings apart takes a closer look; plain colours
# come round as checks).
PATTERNS = ("solid", "stripes", "dots", "backstripes", "rows", "columns", "crosshatch")
CYCLE = len(PALETTE) * len(PATTERNS)
# Keys without any status row: grey, plain, white text.
NONE_COLOR = "#6B7280"
# The example shop's statuses keep the colours they always had: complete blue,
# pending orange and striped, cancelled vermillion.
EXAMPLE = {
    "complete": ("#0072B2", "solid"),
    "pending": ("#E69F00", "stripes"),
    "cancelled": ("#D55E00", "solid"),
}


def order(found: Iterable[str] = ()) -> list[str]:
    """The statuses in the order the charts stack them: the declared ones, the undeclared ones
    among ``found`` (values the history holds that the declaration does not list), then ``none``.

    The example's three keep the order they always had (complete at the bottom).
    """
    from reporting.declaration import statuses

    declared = list(statuses())
    undeclared = sorted(set(found) - set(declared) - {"none"})
    if set(declared) == set(EXAMPLE):
        declared = ["complete", "pending", "cancelled"]
    return [*declared, *undeclared, "none"]


def _luminance(color: str) -> float:
    """WCAG 2.1 relative luminance of ``#RRGGBB``."""

    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (int(color[i : i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def contrast(first: str, second: str) -> float:
    """The WCAG 2.1 contrast ratio of two ``#RRGGBB`` colours, from 1 to 21."""
    high, low = sorted((_luminance(first), _luminance(second)), reverse=True)
    return (high + 0.05) / (low + 0.05)


@dataclass(frozen=True)
class Style:
    """How a status is drawn: a colour, a pattern over it, and the colour of text on it.

    Attributes:
        color: the background colour, ``#RRGGBB``.
        text: the text colour on ``color``, at WCAG AA contrast or more.
        pattern: the name of the pattern (``solid``, ``stripes`` ...).
        image: the pattern as a CSS ``background-image`` (``none`` for solid).
        size: its CSS ``background-size`` (``auto`` unless the pattern tiles).
    """

    color: str
    text: str
    pattern: str
    image: str
    size: str

    @property
    def css(self) -> str:
        """The inline CSS that paints the colour and the pattern."""
        return f"background-color: {self.color}; background-image: {self.image}; background-size: {self.size}"


def _painted(color: str, pattern: str, *, spacing: int = 7, ink: str | None = None) -> Style:
    text = DARK if contrast(color, DARK) >= contrast(color, LIGHT) else LIGHT
    # Lines in the text's colour, faint: light on dark colours, dark on light ones.
    ink = ink or ("rgba(17,24,39,.32)" if text == DARK else "rgba(255,255,255,.45)")
    s = spacing
    image, size = {
        "solid": ("none", "auto"),
        "stripes": (f"repeating-linear-gradient(45deg, {ink} 0 3px, transparent 3px {s}px)", "auto"),
        "backstripes": (f"repeating-linear-gradient(-45deg, {ink} 0 3px, transparent 3px {s}px)", "auto"),
        "dots": (f"radial-gradient({ink} 1.6px, transparent 2.2px)", f"{s - 1}px {s - 1}px"),
        "rows": (f"repeating-linear-gradient(0deg, {ink} 0 2px, transparent 2px {s - 1}px)", "auto"),
        "columns": (f"repeating-linear-gradient(90deg, {ink} 0 2px, transparent 2px {s - 1}px)", "auto"),
        "checks": (f"repeating-conic-gradient({ink} 0 25%, transparent 0 50%)", f"{s}px {s}px"),
        "crosshatch": (
            f"repeating-linear-gradient(45deg, {ink} 0 1.5px, transparent 1.5px {s}px), "
            f"repeating-linear-gradient(-45deg, {ink} 0 1.5px, transparent 1.5px {s}px)",
            "auto",
        ),
    }[pattern]
    return Style(color, text, pattern, image, size)


def style_at(index: int) -> Style:
    """The style of the ``index``-th status (from 0): distinct for every index."""
    turn, within = divmod(index, CYCLE)
    pattern = PATTERNS[within % len(PATTERNS)]
    if turn and pattern == "solid":  # a plain colour has no spacing to vary: checks instead
        pattern = "checks"
    return _painted(PALETTE[within % len(PALETTE)], pattern, spacing=7 + 4 * turn)


def style(status: str) -> Style:
    """How ``status`` is drawn in every chart, legend and badge: any string, the same every time.

    A declared status takes the style of its place among the declared ones, so no
    two share one; ``none`` is plain grey. A value the declaration does not have
    (a history may hold one) takes a style after the declared ones, chosen by a
    hash of the value: never a declared status's, the same on every page and in
    every process, though two such values may share one (1 in 56).
    """
    declared = order()[:-1]
    if status == "none":
        return _painted(NONE_COLOR, "solid")
    if set(declared) == set(EXAMPLE) and status in EXAMPLE:
        color, pattern = EXAMPLE[status]
        # Pending's white stripes, as they always were.
        return _painted(color, pattern, ink="rgba(255,255,255,.45)")
    if status in declared:
        return style_at(declared.index(status))
    digest = int.from_bytes(hashlib.sha256(status.encode("utf-8", "surrogatepass")).digest()[:8], "big")
    return style_at(len(declared) + digest % CYCLE)


def color(status: str) -> str:
    """The colour of a status in every chart, legend and badge."""
    return style(status).color


def text_on(status: str) -> str:
    """The colour of text written on :func:`color` of ``status``, at WCAG AA contrast."""
    return style(status).text


def pattern(status: str) -> str:
    """The pattern of a status as inline CSS (colour, ``background-image``, ``background-size``)."""
    return style(status).css


@dataclass(frozen=True)
class Bar:
    #: The status value.
    label: str
    value: int
    percent: float
    #: Width of the bar, in percent of the largest.
    width: float
    color: str
    #: The inline CSS of its colour and pattern.
    css: str = ""
    #: The status as people read it.
    text: str = ""


def bar_chart(counts: dict[str, int]) -> list[Bar]:
    """Horizontal bars, one per status, scaled to the largest; ``none`` only if there are such orders."""
    from reporting.declaration import status_label

    largest = max(counts.values(), default=0) or 1
    total = sum(counts.values()) or 1
    return [
        Bar(
            label=status,
            value=counts.get(status, 0),
            percent=100 * counts.get(status, 0) / total,
            width=100 * counts.get(status, 0) / largest,
            color=color(status),
            css=pattern(status),
            text=status_label(status),
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
    #: The inline CSS of its colour and pattern.
    css: str = ""
    #: The status as people read it.
    label: str = ""


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
    from reporting.declaration import status_label

    totals = [sum(series[s][i] for s in series) for i in range(len(days))]
    # Four gridline steps of a round size: 0, 10, 20, 30, 40 rather than 0 and 37.
    step = nice_step(-(-max(max(totals, default=0), 1) // 4))
    top = 4 * step
    columns = []
    for i, day in enumerate(days):
        segments = [
            Segment(status, value, 100 * value / top, color(status), pattern(status), status_label(status))
            for status in order(series)
            if (value := series.get(status, [0] * len(days))[i])
        ]
        last = i == len(days) - 1
        label = day.strftime("%m-%d") if (len(days) - 1 - i) % label_every == 0 else ""
        columns.append(Column(day, totals[i], segments, label, partial=last and day == today))
    return columns, [step * k for k in (4, 3, 2, 1, 0)]
