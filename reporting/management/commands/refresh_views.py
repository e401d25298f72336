from __future__ import annotations

import argparse
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from reporting import services


class Command(BaseCommand):
    help = "Refresh the reporting materialized views (concurrently by default)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--concurrently",
            action=argparse.BooleanOptionalAction,
            default=True,
            help="REFRESH ... CONCURRENTLY, readers never blocked (default); --no-concurrently is "
            "faster but blocks every reader while it runs",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        for name in services.views_refresh(concurrently=options["concurrently"]):
            self.stdout.write(f"refreshed {name}")
