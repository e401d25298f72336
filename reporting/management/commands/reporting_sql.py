from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from reporting.source_sql import installation_sql


class Command(BaseCommand):
    help = (
        "Print every SQL statement the reporting installation is made of: the views and triggers generated "
        "from REPORTING_SOURCE, the reporting views with their indexes, and the SQL functions."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        for what, statement in installation_sql():
            self.stdout.write(f"-- {what}\n{statement.strip().rstrip(';')};\n")
