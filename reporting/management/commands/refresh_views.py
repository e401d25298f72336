from __future__ import annotations

import argparse
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from reporting import services
from reporting.choices import RefreshOutcome, RefreshTrigger


class Command(BaseCommand):
    help = "Refresh the reporting views once (concurrently, and only if something changed)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--concurrently",
            action=argparse.BooleanOptionalAction,
            default=True,
            help="REFRESH ... CONCURRENTLY, readers never blocked (default); --no-concurrently is "
            "faster but blocks every reader while it runs",
        )
        parser.add_argument("--force", action="store_true", help="refresh even if nothing changed")

    def handle(self, *args: Any, **options: Any) -> None:
        result = services.views_refresh(
            trigger=RefreshTrigger.MANUAL, concurrently=options["concurrently"], force=options["force"]
        )
        line = f"{result.outcome}: {', '.join(result.views)}"
        if result.outcome == RefreshOutcome.OK:
            seconds = result.duration.total_seconds() if result.duration else 0.0
            line += f" in {seconds:.2f} s, {result.rows:,} rows, {result.changes_absorbed:,} changes absorbed"
            if result.handed_over and result.handover_duration is not None:
                line += (
                    f"; {result.handed_over:,} orders changed meanwhile handed to the new overlay"
                    f" in {result.handover_duration.total_seconds():.2f} s"
                )
        elif result.outcome == RefreshOutcome.UNCHANGED:
            line += " (nothing changed since the last refresh; --force refreshes anyway)"
        if result.outcome == RefreshOutcome.SKIPPED:
            # Not refreshed: a caller (cron, a deploy script) must be able to tell.
            raise CommandError(f"refresh skipped: {result.error}")
        if result.outcome in (RefreshOutcome.FAILED, RefreshOutcome.CANCELLED):
            raise CommandError(f"refresh {result.outcome}: {result.error}")
        self.stdout.write(line)
