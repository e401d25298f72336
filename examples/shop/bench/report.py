"""What a benchmark run reports, as one model that the console table and the Markdown both render.

A run (one-shot or steady) turns its measurements into a :class:`Report`:
tables of text cells and a list of :class:`Target` verdicts. ``manage.py bench``
prints it with rich and, with ``--markdown``, writes the same report as Markdown.
"""

from __future__ import annotations

__all__ = ["Report", "Table", "Target", "markdown", "print_report"]

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Target:
    """One goal and how the run did against it.

    Attributes:
        target: what is asked, in words ("page of 100 p99 <= 10 ms").
        met: ``True``/``False``; ``None`` for a figure that is reported, not judged.
        figure: what was measured, with its unit.
        orders: the size it was measured at, where a run has several.
    """

    target: str
    met: bool | None
    figure: str
    orders: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"orders": self.orders, "target": self.target, "met": self.met, "figure": self.figure}


@dataclass(frozen=True)
class Table:
    """Rows of text cells under ``columns``; columns from ``numeric_from`` on are right-aligned."""

    title: str
    columns: tuple[str, ...]
    rows: list[tuple[str, ...]]
    numeric_from: int = 1


@dataclass
class Report:
    """A run's report: a line about the setup, its tables, its targets, and notes such as setup times."""

    summary: str
    tables: list[Table]
    targets_title: str
    targets: list[Target]
    notes: list[str] = field(default_factory=list)

    def target_columns(self) -> tuple[str, ...]:
        sized = any(t.orders is not None for t in self.targets)
        return ("orders", "target", "met", "measured") if sized else ("target", "met", "measured")

    def target_rows(self, verdicts: dict[bool | None, str]) -> list[tuple[str, ...]]:
        sized = len(self.target_columns()) == 4
        return [
            ((f"{t.orders:,}",) if sized else ()) + (t.target, verdicts[t.met], t.figure)
            for t in self.targets
        ]


MARKDOWN_VERDICTS: dict[bool | None, str] = {True: "met", False: "**not met**", None: "reported"}
CONSOLE_VERDICTS: dict[bool | None, str] = {
    True: "[green]met[/green]",
    False: "[red]not met[/red]",
    None: "reported",
}


def _markdown_table(columns: tuple[str, ...], rows: list[tuple[str, ...]], numeric_from: int) -> list[str]:
    align = ["---:" if i >= numeric_from else "---" for i in range(len(columns))]
    return [
        f"| {' | '.join(columns)} |",
        f"|{'|'.join(align)}|",
        *(f"| {' | '.join(row)} |" for row in rows),
    ]


def markdown(report: Report) -> str:
    """The report as Markdown: the summary, each table, the targets, the notes."""
    lines = [report.summary, ""]
    for table in report.tables:
        if table.rows:
            rows = _markdown_table(table.columns, table.rows, table.numeric_from)
            lines += [f"**{table.title}**", "", *rows, ""]
    columns = report.target_columns()
    lines += [*_markdown_table(columns, report.target_rows(MARKDOWN_VERDICTS), len(columns)), ""]
    lines += [f"{note}  " for note in report.notes]
    return "\n".join(lines).rstrip() + "\n"


def print_report(report: Report, console: Any) -> None:
    """Print the report on a rich ``Console``: the same tables and targets as :func:`markdown`."""
    from rich.table import Table as RichTable

    console.print(report.summary)
    for table in report.tables:
        if not table.rows:
            continue
        rich = RichTable(title=table.title)
        for i, column in enumerate(table.columns):
            rich.add_column(column, justify="right" if i >= table.numeric_from else "left")
        for row in table.rows:
            rich.add_row(*row)
        console.print(rich)
    targets = RichTable(title=report.targets_title)
    for column in report.target_columns():
        targets.add_column(column)
    for row in report.target_rows(CONSOLE_VERDICTS):
        targets.add_row(*row)
    console.print(targets)
    for note in report.notes:
        console.print(note)
