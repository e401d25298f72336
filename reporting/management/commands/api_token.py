from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from reporting import tokens
from reporting.exceptions import ReportingError


class Command(BaseCommand):
    help = "Create or revoke API tokens (Authorization: Bearer <token>)."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
        create = actions.add_parser("create", help="create a token for a user and print it (once)")
        create.add_argument("username")
        create.add_argument("--name", default="", help="what the token is for")
        revoke = actions.add_parser("revoke", help="delete every token of a user")
        revoke.add_argument("username")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            if options["action"] == "create":
                self.stdout.write(tokens.api_token_create(username=options["username"], name=options["name"]))
            else:
                count = tokens.api_token_revoke(username=options["username"])
                self.stdout.write(f"revoked {count} token(s) of {options['username']}")
        except ReportingError as exc:
            raise CommandError(str(exc)) from exc
