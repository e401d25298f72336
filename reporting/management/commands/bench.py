from __future__ import annotations

import json
from pathlib import Path
from typing import IO, Any, cast

from django.core.management.base import BaseCommand, CommandError, CommandParser
from rich.console import Console
from rich.table import Table

from reporting.benchmark import BenchConfig, BenchReport, bench_run
from reporting.benchmark_steady import (
    COLUMNS,
    SteadyConfig,
    SteadyReport,
    steady_rows,
    steady_run,
    steady_targets,
)


def _sizes(value: str) -> list[int]:
    sizes = [int(part.replace("_", "")) for part in value.split(",") if part.strip()]
    if not sizes or any(size < 100 for size in sizes):
        raise ValueError(value)
    return sizes


def _format(value: float, unit: str) -> str:
    if unit == "ms":
        return f"{value:,.3f}" if value < 10 else f"{value:,.1f}"
    if unit in ("MiB",):
        return f"{value:,.1f} MiB"
    return f"{value:,.0f} {unit}"


def markdown(report: BenchReport) -> str:
    """The report as Markdown tables, for the README."""
    lines = [
        f"Machine: {report.machine['cpus']} CPUs, {report.machine['platform']}, "
        f"Python {report.machine['python']}, "
        f"PostgreSQL {report.machine['postgresql']}{' (embedded)' if report.machine['embedded'] else ''}; "
        f"median and p95 of {report.config.repeat} runs after a warm-up.",
        "",
        "| orders | measurement | query | approach | median | p95 | vs baseline |",
        "|---:|---|---|---|---:|---:|---:|",
    ]
    for m in report.measurements:
        ratio = report.ratio(m)
        lines.append(
            f"| {m.orders:,} | {m.group} | {m.name} | {m.approach} | {_format(m.median, m.unit)} | "
            f"{_format(m.p95, m.unit) if len(m.samples) > 1 else ''} | "
            f"{f'{ratio:,.1f}x' if ratio is not None else ''} |"
        )
    lines += ["", "| orders | target | met | measured |", "|---:|---|---|---|"]
    for t in report.targets:
        met = {True: "met", False: "**not met**", None: "reported"}[t["met"]]
        lines.append(f"| {t['orders']:,} | {t['target']} | {met} | {t['figure']} |")
    return "\n".join(lines) + "\n"


def steady_markdown(report: SteadyReport) -> str:
    """The steady-state report as Markdown tables, for the README."""
    c = report.config
    lines = [
        f"{c.orders:,} orders, {c.rate:g} changes/s, {c.seconds:g} s per design; refresh design: refresh "
        f"every {c.refresh_interval:g} s; overlay design: fold every {c.fold_interval:g} s, then one "
        "refresh (a compaction) with the workload still running.",
        "",
        f"| measurement | {' | '.join(COLUMNS)} |",
        "|---|" + "---:|" * len(COLUMNS),
        *(f"| {' | '.join(row)} |" for row in steady_rows(report)),
        "",
        "| target (overlay design) | met | measured |",
        "|---|---|---|",
    ]
    for target, met, figure in steady_targets(report):
        lines.append(
            f"| {target} | {dict([(True, 'met'), (False, '**not met**'), (None, '-')])[met]} | {figure} |"
        )
    return "\n".join(lines) + "\n"


class Command(BaseCommand):
    help = (
        "Benchmark every read strategy, refreshes, writes and the CSV export side by side, in a "
        "database of its own (never the user's data)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--orders",
            type=_sizes,
            default=[1_000_000],
            help="orders to seed; several sizes comma-separated (default 1000000)",
        )
        parser.add_argument("--quick", action="store_true", help="100 000 orders (overrides --orders)")
        parser.add_argument("--repeat", type=int, default=5, help="timed runs per figure after a warm-up (5)")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument(
            "--database", default="", help="name of the scratch database (default: <name>_bench)"
        )
        parser.add_argument("--keep", action="store_true", help="keep the scratch database afterwards")
        parser.add_argument(
            "--replica",
            action="store_true",
            help="also start a hot standby (embedded server) and measure how soon a refresh reaches it",
        )
        steady = parser.add_argument_group("steady state (--steady)")
        steady.add_argument(
            "--steady",
            action="store_true",
            help="a writer, the maintenance and a reader at once, under the refresh design and the overlay "
            "design in turn (one size: the first of --orders)",
        )
        steady.add_argument("--rate", type=float, default=200.0, help="changes a second (200)")
        steady.add_argument(
            "--seconds",
            type=float,
            default=120.0,
            help="seconds per design (120); the overlay design then runs a compaction as long as it takes",
        )
        steady.add_argument("--fold-interval", type=float, default=0.5, help="seconds between folds (0.5)")
        steady.add_argument(
            "--refresh-interval",
            type=float,
            default=10.0,
            help="seconds between refreshes, refresh design (10)",
        )
        steady.add_argument(
            "--reuse",
            action="store_true",
            help="keep the seeded database and reuse it next time (seeding 10 M orders takes minutes)",
        )
        parser.add_argument("--json", type=Path, help="also write the report as JSON to this file")
        parser.add_argument("--markdown", type=Path, help="also write the report as Markdown to this file")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["repeat"] < 1:
            raise CommandError("--repeat must be at least 1")
        if options["steady"]:
            self._steady(options)
            return
        config = BenchConfig(
            sizes=[100_000] if options["quick"] else options["orders"],
            repeat=options["repeat"],
            seed=options["seed"],
            database=options["database"],
            keep=options["keep"],
            replica=options["replica"],
        )
        # Wide enough for the table when the output is a file or a pipe.
        console = Console(file=cast(IO[str], self.stdout), highlight=False, width=160)
        with console.status("starting") as status:
            report = bench_run(config, progress=lambda text: status.update(text))
        self._print(console, report)
        if options["json"]:
            options["json"].write_text(json.dumps(report.as_dict(), indent=2, default=str))
        if options["markdown"]:
            options["markdown"].write_text(markdown(report))

    def _steady(self, options: dict[str, Any]) -> None:
        for name in ("rate", "seconds", "fold_interval", "refresh_interval"):
            if not options[name] > 0:
                raise CommandError(f"--{name.replace('_', '-')} must be more than 0")
        config = SteadyConfig(
            orders=100_000 if options["quick"] else options["orders"][0],
            rate=options["rate"],
            seconds=options["seconds"],
            fold_interval=options["fold_interval"],
            refresh_interval=options["refresh_interval"],
            seed=options["seed"],
            database=options["database"],
            keep=options["keep"],
            reuse=options["reuse"],
        )
        console = Console(file=cast(IO[str], self.stdout), highlight=False, width=160)
        with console.status("starting") as status:
            report = steady_run(config, progress=lambda text: status.update(text))
        table = Table(
            title=f"Steady state: {config.orders:,} orders, {config.rate:g} changes/s, "
            f"{config.seconds:g} s per design (refresh every {config.refresh_interval:g} s; "
            f"fold every {config.fold_interval:g} s, then a compaction)"
        )
        table.add_column("measurement")
        for column in COLUMNS:
            table.add_column(column, justify="right")
        for row in steady_rows(report):
            table.add_row(*row)
        console.print(table)
        targets = Table(title="Targets (issue #12), overlay design")
        for column in ("target", "met", "measured"):
            targets.add_column(column)
        for target, met, figure in steady_targets(report):
            targets.add_row(
                target, {True: "[green]met[/green]", False: "[red]not met[/red]", None: "-"}[met], figure
            )
        console.print(targets)
        for name, value in report.setup.items():
            console.print(f"{name}: {value:,.1f}")
        if options["markdown"]:
            options["markdown"].write_text(steady_markdown(report))

    def _print(self, console: Console, report: BenchReport) -> None:
        table = Table(title="Benchmark (medians; ratios against the Subquery baseline of the same run)")
        for column in ("orders", "measurement", "query", "approach"):
            table.add_column(column)
        for column in ("median", "p95", "vs baseline"):
            table.add_column(column, justify="right")
        for m in report.measurements:
            ratio = report.ratio(m)
            table.add_row(
                f"{m.orders:,}",
                m.group,
                m.name,
                m.approach,
                _format(m.median, m.unit),
                _format(m.p95, m.unit) if len(m.samples) > 1 else "",
                f"{ratio:,.1f}x" if ratio is not None else "",
            )
        console.print(table)
        targets = Table(title="Targets (issue #7)")
        for column in ("orders", "target", "met", "measured"):
            targets.add_column(column)
        for t in report.targets:
            met = {True: "[green]met[/green]", False: "[red]not met[/red]", None: "reported"}[t["met"]]
            targets.add_row(f"{t['orders']:,}", t["target"], met, t["figure"])
        console.print(targets)
