from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser

from scheduler.console import console_logging
from scheduler.runner import SchedulerRunner


class Command(BaseCommand):
    help = (
        "Refresh the reporting views on a schedule (REPORTING_REFRESH_INTERVAL seconds, or "
        "REPORTING_REFRESH_CRON) until SIGTERM or SIGINT. Run it in a process of its own. It logs to "
        "standard error (-v 0: warnings only, -v 2: debug) unless the project's LOGGING routes the "
        "scheduler and reporting loggers itself."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--no-startup-refresh", action="store_true", help="do not refresh at start-up")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            runner = SchedulerRunner(startup_refresh=not options["no_startup_refresh"])
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from exc
        # The raw stream: Django's wrapper would colour every line as an error.
        stream = getattr(self.stderr, "_out", self.stderr)
        with console_logging(verbosity=options["verbosity"], stream=stream):
            runner.run()
