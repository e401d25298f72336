"""``manage.py bench``: the benchmark, apart from the app's core (it only calls its selectors and services).

* :mod:`~examples.shop.bench.cases`: each read, by each approach a user could take;
* :mod:`~examples.shop.bench.runner`: the one-shot run, every approach side by side;
* :mod:`~examples.shop.bench.steady`: the steady-state run, writes and maintenance under way;
* :mod:`~examples.shop.bench.targets`: the goals, as data;
* :mod:`~examples.shop.bench.report`: one report model, printed as a table or written as Markdown.
"""

from __future__ import annotations

__all__ = [
    "BenchConfig",
    "BenchResults",
    "Report",
    "SteadyConfig",
    "SteadyResults",
    "bench_run",
    "markdown",
    "one_shot_report",
    "print_report",
    "steady_report",
    "steady_run",
]

from examples.shop.bench.report import Report, Table, markdown, print_report
from examples.shop.bench.runner import BenchConfig, BenchResults, Measurement, bench_run
from examples.shop.bench.steady import (
    COLUMNS,
    TIMELINE_COLUMNS,
    SteadyConfig,
    SteadyResults,
    steady_rows,
    steady_run,
    timeline_rows,
)
from examples.shop.bench.targets import one_shot_targets, steady_targets
from reporting import conf


def _format(value: float, unit: str) -> str:
    if unit == "ms":
        return f"{value:,.3f}" if value < 10 else f"{value:,.1f}"
    if unit == "MiB":
        return f"{value:,.1f} MiB"
    if unit == "%":
        return f"{value:,.2f} %"
    return f"{value:,.0f} {unit}"


def _cells(results: BenchResults, m: Measurement) -> tuple[str, ...]:
    ratio = results.ratio(m)
    return (
        f"{m.orders:,}",
        m.group,
        m.name,
        m.approach,
        _format(m.median, m.unit),
        _format(m.p95, m.unit) if len(m.samples) > 1 else "",
        f"{ratio:,.1f}x" if ratio is not None else "",
    )


def one_shot_report(results: BenchResults) -> Report:
    """The one-shot run's report: every measurement with its ratio, and the targets of issue #7."""
    machine = results.machine
    return Report(
        summary=(
            f"Machine: {machine['cpus']} CPUs, {machine['platform']}, Python {machine['python']}, "
            f"PostgreSQL {machine['postgresql']}{' (embedded)' if machine['embedded'] else ''}; "
            f"median and p95 of {results.config.repeat} runs after a warm-up."
        ),
        tables=[
            Table(
                title="Benchmark (medians; ratios against the Subquery baseline of the same run)",
                columns=("orders", "measurement", "query", "approach", "median", "p95", "vs baseline"),
                rows=[_cells(results, m) for m in results.measurements],
                numeric_from=4,
            )
        ],
        targets_title="Targets (issue #7)",
        targets=one_shot_targets(results),
    )


def steady_report(results: SteadyResults) -> Report:
    """The steady-state run's report: both designs side by side, and the targets of issue #12."""
    c = results.config
    return Report(
        summary=(
            f"{c.orders:,} orders, {c.rate:g} changes/s, {c.seconds:g} s per design; refresh design: "
            f"refresh every {c.refresh_interval:g} s; overlay design: fold every {c.fold_interval:g} s, then "
            f"one refresh (a compaction, counted every {conf.refresh_interval():g} s) with the workload "
            "still running."
        ),
        tables=[
            Table(
                title=f"Steady state: {c.orders:,} orders, {c.rate:g} changes/s",
                columns=("measurement", *COLUMNS),
                rows=steady_rows(results),
            ),
            Table(
                title="Reads around the compaction (overlay design), by when they started",
                columns=TIMELINE_COLUMNS,
                rows=timeline_rows(results),
                numeric_from=1,
            ),
        ],
        targets_title="Targets (issue #12), overlay design",
        targets=steady_targets(results),
        notes=[f"{name}: {value:,.1f}" for name, value in results.setup.items()],
    )
