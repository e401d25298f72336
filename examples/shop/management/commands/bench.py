from __future__ import annotations

import json
from pathlib import Path
from typing import IO, Any, cast

from django.core.management.base import BaseCommand, CommandError, CommandParser
from rich.console import Console

from examples.shop import bench


def _sizes(value: str) -> list[int]:
    sizes = [int(part.replace("_", "")) for part in value.split(",") if part.strip()]
    if not sizes or any(size < 100 for size in sizes):
        raise ValueError(value)
    return sizes


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
            "--audit",
            action="store_true",
            help="only the exactness audit (seed, refresh, then its run time, keys/s and a drift it finds)",
        )
        parser.add_argument(
            "--deploy",
            type=float,
            metavar="SECONDS",
            default=0.0,
            help="only a deploy of a changed view under a reader, pgviews-redux's sync and the app's swap "
            "side by side: failed reads and latencies before, during and after (SECONDS per phase, say 20)",
        )
        parser.add_argument(
            "--tail-only",
            action="store_true",
            help="only the reads with a large unfolded tail (half the orders changed since the latest fold)",
        )
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
        steady.add_argument(
            "--after-seconds",
            type=float,
            default=60.0,
            help="seconds the overlay design runs on after its compaction, measured apart (60)",
        )
        steady.add_argument(
            "--spread",
            action="store_true",
            help="changes to existing orders spread over all of them (default: the newest 5%%)",
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
        if options["deploy"] < 0:
            raise CommandError("--deploy must be 0 or more seconds")
        # Wide enough for the table when the output is a file or a pipe.
        console = Console(file=cast(IO[str], self.stdout), highlight=False, width=160)
        if options["steady"]:
            for name in ("rate", "seconds", "fold_interval", "refresh_interval"):
                if not options[name] > 0:
                    raise CommandError(f"--{name.replace('_', '-')} must be more than 0")
            steady_config = bench.SteadyConfig(
                orders=100_000 if options["quick"] else options["orders"][0],
                rate=options["rate"],
                seconds=options["seconds"],
                fold_interval=options["fold_interval"],
                refresh_interval=options["refresh_interval"],
                after_seconds=options["after_seconds"],
                spread=options["spread"],
                seed=options["seed"],
                database=options["database"],
                keep=options["keep"],
                reuse=options["reuse"],
            )
            with console.status("starting") as status:
                steady = bench.steady_run(steady_config, progress=lambda text: status.update(text))
            report = bench.steady_report(steady)
        else:
            config = bench.BenchConfig(
                sizes=[100_000] if options["quick"] else options["orders"],
                repeat=options["repeat"],
                seed=options["seed"],
                database=options["database"],
                keep=options["keep"],
                replica=options["replica"],
                audit_only=options["audit"],
                tail_only=options["tail_only"],
                deploy_seconds=options["deploy"],
            )
            with console.status("starting") as status:
                results = bench.bench_run(config, progress=lambda text: status.update(text))
            report = bench.one_shot_report(results)
            if options["json"]:
                data = {**results.as_dict(), "targets": [t.as_dict() for t in report.targets]}
                options["json"].write_text(json.dumps(data, indent=2, default=str))
        bench.print_report(report, console)
        if options["markdown"]:
            options["markdown"].write_text(bench.markdown(report))
