from __future__ import annotations

import os
import sys
from typing import Any

from django.core.management.base import BaseCommand

from reporting.source_install import installation_sql


class Command(BaseCommand):
    help = (
        "Print every SQL statement the reporting installation is made of: the views and triggers generated "
        "from REPORTING_SOURCE, the reporting views with their indexes, and the SQL functions."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            for what, statement in installation_sql():
                self.stdout.write(f"-- {what}\n{statement.strip().rstrip(';')};\n")
            self.stdout.flush()
        except BrokenPipeError:
            # Read through head or a pager that stopped early: not an error. Point
            # stdout at /dev/null so that the interpreter's final flush stays quiet.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
