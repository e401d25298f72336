from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from typing import IO, Any, TypeVar, cast

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections, transaction
from rich.console import Console
from rich.table import Table

from examples.shop import services as shop_services
from examples.shop.models import Status
from reporting import selectors, services
from reporting.choices import Strategy
from reporting.management.arguments import positive_int
from reporting.routers import read_database

T = TypeVar("T")


def _timed(func: Callable[[], T]) -> tuple[T, float]:
    started = time.perf_counter()
    result = func()
    return result, (time.perf_counter() - started) * 1000


def _counts_compared(console: Console, title: str) -> tuple[dict[str, dict[str, int]], int]:
    """Print the counts by every strategy, read in one snapshot; fail if live and realtime differ.

    Returns:
        The counts by strategy, and the changes since the refresh that ``snapshot`` misses.
    """
    table = Table(title=title)
    table.add_column("strategy")
    for name in [*Status.values, "none"]:
        table.add_column(name, justify="right")
    table.add_column("query ms", justify="right")
    results: dict[str, dict[str, int]] = {}
    behind = 0
    # One REPEATABLE READ snapshot for the three, so that a writer busy meanwhile
    # cannot make them differ: live and realtime must then agree exactly.
    with transaction.atomic(using=read_database()):
        with connections[read_database()].cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        for strategy in (Strategy.LIVE, Strategy.SNAPSHOT, Strategy.REALTIME):
            counts, ms = _timed(partial(selectors.order_status_counts, strategy=strategy))
            results[strategy] = counts.as_dict()
            table.add_row(strategy, *(f"{n:,}" for n in counts.as_dict().values()), f"{ms:,.1f}")
            if strategy is Strategy.SNAPSHOT:
                behind = counts.freshness.changes_since_view or 0
    console.print(table)
    if results[Strategy.LIVE] != results[Strategy.REALTIME]:
        raise CommandError("the live and realtime counts differ in one snapshot: please report this")
    return results, behind


class Command(BaseCommand):
    help = "Set up the database, seed demo orders if it is empty, refresh, and show the reports."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--orders", type=positive_int, default=100_000, help="orders to seed into an empty database"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        # Wide enough for the tables when the output is a file or a pipe (rich's default is 80).
        width = None if self.stdout.isatty() else 120
        console = Console(file=cast(IO[str], self.stdout), highlight=False, width=width)
        console.print("[bold]1. Migrating[/bold] (creates the schema and the reporting views)")
        call_command("migrate", verbosity=0, interactive=False)
        console.print(f"[bold]2. Seeding[/bold] {options['orders']:,} orders if the database is empty")
        seeded = shop_services.orders_seed_if_empty(orders=options["orders"])
        console.print(f"   {'seeded' if seeded else 'orders already present, kept them'}")
        console.print("[bold]3. Refreshing[/bold] the reporting views")
        result, ms = _timed(partial(services.views_refresh, force=True))
        console.print(f"   {result.outcome}: {', '.join(result.views)} in {ms:,.0f} ms")

        results, behind = _counts_compared(console, "Orders per latest status")
        if results[Strategy.SNAPSHOT] == results[Strategy.LIVE]:
            console.print("[green]Counts match between the strategies.[/green]")
        else:
            # Not an error: something wrote to the database since the refresh above.
            console.print(
                f"[green]live and realtime match.[/green] snapshot misses {behind:,} change(s) made since "
                "its refresh: something is writing to this database."
            )

        for strategy in (Strategy.LIVE, Strategy.SNAPSHOT, Strategy.REALTIME):
            page, ms = _timed(
                partial(selectors.order_list_by_status, status=Status.CANCELLED, strategy=strategy, limit=5)
            )
            table = Table(title=f"Last cancelled, {strategy}, {ms:,.1f} ms")
            table.add_column("order", justify="right")
            table.add_column("cancelled at")
            for row in page.rows:
                table.add_row(f"{row.order_id:,}", f"{row.status_created:%Y-%m-%d %H:%M:%S %Z}")
            console.print(table)
        if seeded:
            # Only on the orders seeded just now: never write to data that was there.
            self._overlay(console)
        console.print(
            "Next: [bold]make serve[/bold] runs the dashboard on http://127.0.0.1:8000/ "
            "(log in as demo / demo-reports), [bold]make test[/bold] the test suite."
        )

    def _overlay(self, console: Console) -> None:
        """Changes after the refresh, a fold, and counts that stay exact and fast."""
        changed = shop_services.orders_seed_progress(orders=1000)
        console.print(f"[bold]4. A shop at work[/bold]: {changed:,} orders changed status since the refresh")
        fold, ms = _timed(services.overlay_fold)
        console.print(
            f"   fold ({fold.outcome}): {fold.orders:,} orders into the overlay in {ms:,.0f} ms "
            "(the scheduler folds every REPORTING_FOLD_INTERVAL seconds)"
        )
        _counts_compared(console, "Orders per latest status, after the changes")
        console.print(
            "[green]realtime matches live[/green]: views + overlay + what changed since the fold; "
            "snapshot is the views as of their refresh."
        )
