from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from reporting import services

DEMO_USERNAME = "demo"
DEMO_PASSWORD = "demo-reports"


class Command(BaseCommand):
    help = f"Create (or reset) the local demo user {DEMO_USERNAME!r} who may see the reports."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", default=DEMO_USERNAME)
        parser.add_argument("--password", default=DEMO_PASSWORD)

    def handle(self, *args: Any, **options: Any) -> None:
        services.reports_user_ensure(username=options["username"], password=options["password"])
        self.stdout.write(
            f"user {options['username']!r} with password {options['password']!r} may see the reports"
        )
