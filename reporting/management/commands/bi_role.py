from __future__ import annotations

import getpass
import os
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from reporting import bi, selectors, services
from reporting.exceptions import ReportingError

PASSWORD_ENV = "REPORTING_BI_PASSWORD"


def _password() -> str:
    """The password from REPORTING_BI_PASSWORD, or asked twice on the terminal; never from argv."""
    if os.environ.get(PASSWORD_ENV):
        return os.environ[PASSWORD_ENV]
    if not sys.stdin.isatty():
        raise CommandError(f"set {PASSWORD_ENV} or run on a terminal to be asked for the password")
    first = getpass.getpass("Password: ")
    if first != getpass.getpass("Password again: "):
        raise CommandError("the passwords differ")
    return first


def _describe(role: bi.BiRole) -> str:
    limit = f", transaction timeout {role.transaction_timeout}" if role.transaction_timeout else ""
    locked = f"; {role.locked_out}" if role.locked_out else ""
    return f"{role.name}: {role.connection_limit} connections, {', '.join(role.settings)}{limit}{locked}"


class Command(BaseCommand):
    help = "Manage the read-only PostgreSQL roles of BI tools (members of the BI group, reporting_reader)."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
        create = actions.add_parser(
            "create", help=f"create a login role (password from ${PASSWORD_ENV} or asked)"
        )
        create.add_argument("name")
        create.add_argument("--connection-limit", type=int, default=bi.RoleSettings.connection_limit)
        create.add_argument("--statement-timeout", default=bi.RoleSettings.statement_timeout)
        create.add_argument(
            "--idle-in-transaction-timeout", default=bi.RoleSettings.idle_in_transaction_session_timeout
        )
        create.add_argument(
            "--transaction-timeout",
            default=bi.RoleSettings.transaction_timeout,
            help="longest a transaction may stay open (the watchdog ends the session)",
        )
        rotate = actions.add_parser(
            "rotate-password", help=f"set a new password (from ${PASSWORD_ENV} or asked)"
        )
        rotate.add_argument("name")
        drop = actions.add_parser("drop", help="drop a BI login role")
        drop.add_argument("name")
        unlock = actions.add_parser(
            "unlock", help="let a BI role that the watchdog locked out (NOLOGIN) log in again"
        )
        unlock.add_argument("name")
        actions.add_parser("list", help="list the BI login roles")
        actions.add_parser("grants", help="(re)apply the group's grants on this database")
        actions.add_parser(
            "repair", help="re-apply the grants and every BI role's recorded limits (settings it changed)"
        )
        actions.add_parser(
            "check",
            help="exit 1 unless every reporting view is readable, nothing else is, the schema holds "
            "nothing else, every BI role has its recorded limits, none is locked out and none has a "
            "prepared transaction",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            getattr(self, "_" + options["action"].replace("-", "_"))(options)
        except ReportingError as exc:
            raise CommandError(str(exc)) from exc

    def _create(self, options: dict[str, Any]) -> None:
        # The name and the limits before asking for a password.
        bi.validated_role_name(options["name"])
        role_settings = bi.validated_settings(
            bi.RoleSettings(
                connection_limit=options["connection_limit"],
                statement_timeout=options["statement_timeout"],
                idle_in_transaction_session_timeout=options["idle_in_transaction_timeout"],
                transaction_timeout=options["transaction_timeout"],
            )
        )
        role = services.bi_role_create(
            name=options["name"], password=_password(), role_settings=role_settings
        )
        self.stdout.write(f"created {_describe(role)}")

    def _rotate_password(self, options: dict[str, Any]) -> None:
        bi.validated_role_name(options["name"])
        services.bi_role_rotate_password(name=options["name"], password=_password())
        self.stdout.write(f"new password set for {options['name']}")

    def _drop(self, options: dict[str, Any]) -> None:
        services.bi_role_drop(name=options["name"])
        self.stdout.write(f"dropped {options['name']}")

    def _unlock(self, options: dict[str, Any]) -> None:
        was_locked = services.bi_role_unlock(name=options["name"])
        self.stdout.write(
            f"unlocked {options['name']}: it can log in again"
            if was_locked
            else f"{options['name']} was not locked out; it can log in"
        )

    def _list(self, options: dict[str, Any]) -> None:
        roles = selectors.bi_role_list()
        for role in roles:
            self.stdout.write(_describe(role))
        if not roles:
            self.stdout.write(f"no BI roles (members of {bi.group()}); 'bi_role create NAME' makes one")

    def _grants(self, options: dict[str, Any]) -> None:
        services.bi_grants_apply(create_group=True)
        self.stdout.write(f"granted {bi.group()} read access to the reporting views")

    def _repair(self, options: dict[str, Any]) -> None:
        names = services.bi_roles_repair()
        self.stdout.write(
            f"granted {bi.group()} read access to the reporting views; "
            f"restored the limits of {len(names)} BI role(s){': ' if names else ''}{', '.join(names)}"
        )

    def _check(self, options: dict[str, Any]) -> None:
        gaps = selectors.bi_grants_check()
        for gap in gaps:
            self.stderr.write(str(gap))
        for note in selectors.bi_notes():
            self.stdout.write(f"note: {note}")
        if gaps:
            kinds = {gap.kind for gap in gaps}
            remedies = []
            if kinds & {"missing", "extra", "drift"}:
                remedies.append("'bi_role repair' re-applies the grants and the roles' limits")
            if "foreign" in kinds:
                remedies.append("objects of others in the schema must be moved out by hand")
            if "locked" in kinds:
                remedies.append("'bi_role unlock NAME' lets a locked-out role log in again")
            if "prepared" in kinds:
                remedies.append("the watchdog rolls back BI prepared transactions in its database")
            raise CommandError(f"{len(gaps)} gap(s); {'; '.join(remedies)}")
        self.stdout.write(f"ok: {bi.group()} reads every reporting view and nothing else")
