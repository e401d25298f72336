from __future__ import annotations

import datetime as dt
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from examples.shop import services as shop_services
from reporting.exceptions import ReportingError
from reporting.management.arguments import positive_int


class Command(BaseCommand):
    help = "Add ORDERS orders with realistic status histories (deterministic for a seed)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--orders", type=positive_int, required=True, help="how many orders to add")
        parser.add_argument("--seed", type=int, default=0, help="same seed, same histories (default 0)")
        parser.add_argument(
            "--until",
            type=dt.datetime.fromisoformat,
            default=None,
            help="newest timestamp, ISO 8601 (default: start of today, UTC)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        started = time.perf_counter()
        with Progress(
            TextColumn("seeding orders"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()
        ) as progress:
            task = progress.add_task("seed", total=options["orders"])
            try:
                result = shop_services.orders_seed(
                    orders=options["orders"],
                    seed=options["seed"],
                    until=options["until"],
                    progress=lambda done, total: progress.update(task, completed=done),
                )
            except ReportingError as exc:
                raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"Seeded {result.orders:,} orders (ids {result.first_order_id:,}-{result.last_order_id:,}) "
            f"with {result.statuses:,} status rows in {time.perf_counter() - started:.1f} s"
        )
