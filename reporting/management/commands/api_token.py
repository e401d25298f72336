from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from reporting import selectors, services
from reporting.exceptions import ReportingError
from reporting.management.arguments import positive_int


def _when(value: dt.datetime | None) -> str:
    return value.isoformat(timespec="seconds") if value else "-"


class Command(BaseCommand):
    help = "Create, list or revoke API tokens (Authorization: Bearer <token>)."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
        create = actions.add_parser("create", help="create a token for a user and print it (once)")
        create.add_argument("username")
        create.add_argument("--name", default="", help="what the token is for (unique per user)")
        create.add_argument(
            "--expires-in-days", type=positive_int, metavar="DAYS", help="refuse the token after DAYS days"
        )
        listing = actions.add_parser("list", help="list the tokens (never the tokens themselves)")
        listing.add_argument("username", nargs="?", help="only this user's")
        revoke = actions.add_parser(
            "revoke", help="delete one token (--id, or USERNAME --name) or every token of a user (--all)"
        )
        revoke.add_argument("username", nargs="?")
        revoke.add_argument("--id", type=positive_int, dest="token_id", help="the token's id (see list)")
        revoke.add_argument("--name", help="the token's name")
        revoke.add_argument("--all", action="store_true", dest="every", help="every token of USERNAME")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            getattr(self, "_" + options["action"])(options)
        except ReportingError as exc:
            raise CommandError(str(exc)) from exc

    def _create(self, options: dict[str, Any]) -> None:
        days = options["expires_in_days"]
        token = services.api_token_create(
            username=options["username"],
            name=options["name"],
            expires_in=dt.timedelta(days=days) if days else None,
        )
        self.stdout.write(token)

    def _list(self, options: dict[str, Any]) -> None:
        for t in selectors.api_token_list(username=options["username"]):
            state = " (expired)" if t.expired else ""
            self.stdout.write(
                f"{t.id}: {t.username} {t.name or '(unnamed)'!r}, created {_when(t.created)}, "
                f"expires {_when(t.expires)}{state}, last used {_when(t.last_used)}"
            )

    def _revoke(self, options: dict[str, Any]) -> None:
        count = services.api_token_revoke(
            token_id=options["token_id"],
            username=options["username"],
            name=options["name"],
            every=options["every"],
        )
        self.stdout.write(f"revoked {count} token(s)")
