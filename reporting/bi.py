"""Read-only PostgreSQL roles for BI tools (Metabase, Superset, psql ...), and their grants.

A NOLOGIN group role, ``reporting_reader``, holds every privilege: CONNECT on
the database, USAGE on the ``reporting`` schema and SELECT on its views
(materialized and plain). BI users are LOGIN roles that are members of it,
with a read-only default transaction, a statement timeout, an idle-in-
transaction timeout and a connection limit. They see the reporting views and
nothing else: the plain views run with their owner's rights, so real-time
views work without any grant on the source tables.

Grants survive view rebuilds twice over: default privileges make every view
that the views' owner creates in the schema readable by the group, and the
grants are re-applied after every pgviews-redux sync (``all_views_synced``)
and by the migration that follows the schema's creation.

Role names must be plain lower-case identifiers and are always quoted;
passwords are hashed on the client (SCRAM-SHA-256, as psql's ``\\password``
does) so the plaintext never reaches the server or its logs.
"""

from __future__ import annotations

__all__ = [
    "GROUP",
    "BiRole",
    "GrantGap",
    "RoleSettings",
    "bi_grants_apply",
    "bi_grants_check",
    "bi_role_create",
    "bi_role_drop",
    "bi_role_list",
    "bi_role_rotate_password",
]

import logging
import re
from dataclasses import dataclass
from typing import Any

from django.db import connections, transaction
from psycopg import sql

from reporting.exceptions import InvalidParameterError, ReportingError
from reporting.matviews import SCHEMA

logger = logging.getLogger(__name__)

GROUP = "reporting_reader"
ROLE_NAME_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class UnknownRoleError(ReportingError, LookupError):
    def __init__(self, name: str) -> None:
        super().__init__(f"no BI role named {name!r} (a member of {GROUP})")


@dataclass(frozen=True)
class RoleSettings:
    """The limits of a BI login role."""

    connection_limit: int = 5
    statement_timeout: str = "30s"
    idle_in_transaction_session_timeout: str = "60s"


@dataclass(frozen=True)
class BiRole:
    name: str
    connection_limit: int
    settings: list[str]


@dataclass(frozen=True)
class GrantGap:
    """Something the group can do that it should not, or cannot that it should."""

    kind: str  # "missing" or "extra"
    privilege: str
    target: str

    def __str__(self) -> str:
        verb = "cannot" if self.kind == "missing" else "can"
        return f"{GROUP} {verb} {self.privilege} {self.target}"


def _validated_name(name: object) -> str:
    if not isinstance(name, str) or not ROLE_NAME_RE.match(name) or name == GROUP:
        raise InvalidParameterError(
            "role name", name, "lower-case letters, digits and _, starting with a letter or _, at most 63"
        )
    return name


def _validated_password(password: object) -> str:
    if not isinstance(password, str) or len(password) < 12:
        raise InvalidParameterError("password", "***", "at least 12 characters")
    return password


def _validated_settings(role_settings: RoleSettings) -> RoleSettings:
    if not isinstance(role_settings.connection_limit, int) or not 1 <= role_settings.connection_limit <= 1000:
        raise InvalidParameterError(
            "connection limit", role_settings.connection_limit, "an integer from 1 to 1000"
        )
    for name in ("statement_timeout", "idle_in_transaction_session_timeout"):
        value = getattr(role_settings, name)
        if not isinstance(value, str) or not re.fullmatch(r"[1-9][0-9]*(ms|s|min|h)?", value):
            raise InvalidParameterError(name.replace("_", " "), value, "a duration such as 500ms, 30s, 5min")
    return role_settings


def _execute(cursor: Any, query: sql.Composable | str, params: Any = None) -> None:
    cursor.execute(query.as_string(cursor.connection) if isinstance(query, sql.Composable) else query, params)


def _role_exists(cursor: Any, name: str) -> bool:
    cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [name])
    return cursor.fetchone() is not None


def _is_member(cursor: Any, name: str) -> bool:
    cursor.execute(
        "SELECT 1 FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member "
        "JOIN pg_roles g ON g.oid = m.roleid WHERE r.rolname = %s AND g.rolname = %s",
        [name, GROUP],
    )
    return cursor.fetchone() is not None


def _password_verifier(cursor: Any, name: str, password: str) -> str:
    """SCRAM-SHA-256 verifier computed by libpq on this side, like psql's \\password."""
    pgconn = cursor.connection.pgconn
    return pgconn.encrypt_password(password.encode(), name.encode(), b"scram-sha-256").decode()


def _reporting_relations(cursor: Any) -> list[str]:
    cursor.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relkind IN ('v', 'm') ORDER BY c.relname",
        [SCHEMA],
    )
    return [row[0] for row in cursor.fetchall()]


def bi_grants_apply(*, using: str = "default", create_group: bool = False) -> bool:
    """Grant the group what it needs on this database, and nothing more.

    Idempotent; safe to run after every migration or view sync.

    Args:
        using: the database alias.
        create_group: create the NOLOGIN group role if it does not exist. Without
            it, a missing group (no BI role was ever created) means nothing to do.

    Returns:
        Whether the grants were applied (``False``: no group role).
    """
    connection = connections[using]
    with transaction.atomic(using=using), connection.cursor() as cursor:
        if not _role_exists(cursor, GROUP):
            if not create_group:
                return False
            _execute(cursor, sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(GROUP)))
        group, schema = sql.Identifier(GROUP), sql.Identifier(SCHEMA)
        cursor.execute("SELECT current_database()")
        database = sql.Identifier(cursor.fetchone()[0])
        _execute(cursor, sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(database, group))
        _execute(cursor, sql.SQL("REVOKE ALL ON SCHEMA {} FROM PUBLIC").format(schema))
        _execute(cursor, sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(schema, group))
        # PostgreSQL 14 still lets PUBLIC create objects in the public schema
        # (15 no longer does): a read-only role must not.
        _execute(cursor, "REVOKE CREATE ON SCHEMA public FROM PUBLIC")
        for relation in _reporting_relations(cursor):
            _execute(
                cursor, sql.SQL("GRANT SELECT ON {} TO {}").format(sql.Identifier(SCHEMA, relation), group)
            )
        # Views that this role creates in the schema later (a rebuilt view) are
        # readable by the group from their first moment.
        _execute(
            cursor,
            sql.SQL("ALTER DEFAULT PRIVILEGES IN SCHEMA {} GRANT SELECT ON TABLES TO {}").format(
                schema, group
            ),
        )
    logger.debug("Granted %s read access to the %s schema", GROUP, SCHEMA)
    return True


def bi_role_create(
    *, name: str, password: str, role_settings: RoleSettings | None = None, using: str = "default"
) -> BiRole:
    """Create a BI login role, a member of ``reporting_reader``.

    Args:
        name: the role name: lower-case letters, digits and ``_``.
        password: at least 12 characters; sent to the server only as a SCRAM verifier.
        role_settings: connection limit and timeouts; the defaults otherwise.
        using: the database alias.

    Raises:
        InvalidParameterError: a bad name, password or setting; nothing is created.
        ReportingError: the role exists already.
    """
    name = _validated_name(name)
    password = _validated_password(password)
    role_settings = _validated_settings(role_settings or RoleSettings())
    bi_grants_apply(using=using, create_group=True)
    connection = connections[using]
    with transaction.atomic(using=using), connection.cursor() as cursor:
        if _role_exists(cursor, name):
            raise ReportingError(f"a role named {name!r} exists already")
        role = sql.Identifier(name)
        _execute(
            cursor,
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {} CONNECTION LIMIT {} IN ROLE {}").format(
                role,
                sql.Literal(_password_verifier(cursor, name, password)),
                sql.Literal(role_settings.connection_limit),
                sql.Identifier(GROUP),
            ),
        )
        for parameter, value in (
            ("default_transaction_read_only", "on"),
            ("statement_timeout", role_settings.statement_timeout),
            ("idle_in_transaction_session_timeout", role_settings.idle_in_transaction_session_timeout),
            ("search_path", SCHEMA),
        ):
            _execute(
                cursor,
                sql.SQL("ALTER ROLE {} SET {} = {}").format(
                    role, sql.Identifier(parameter), sql.Literal(value)
                ),
            )
    logger.info("Created BI role %s", name)
    return _role(name, using)


def bi_role_rotate_password(*, name: str, password: str, using: str = "default") -> None:
    """Give a BI role a new password. Sessions already open stay open.

    Raises:
        InvalidParameterError: a bad name or password.
        UnknownRoleError: no BI role has that name.
    """
    name = _validated_name(name)
    password = _validated_password(password)
    with transaction.atomic(using=using), connections[using].cursor() as cursor:
        if not _is_member(cursor, name):
            raise UnknownRoleError(name)
        _execute(
            cursor,
            sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                sql.Identifier(name), sql.Literal(_password_verifier(cursor, name, password))
            ),
        )


def bi_role_drop(*, name: str, using: str = "default") -> None:
    """Drop a BI login role (only members of ``reporting_reader`` can be dropped here).

    Raises:
        UnknownRoleError: no BI role has that name.
    """
    name = _validated_name(name)
    with transaction.atomic(using=using), connections[using].cursor() as cursor:
        if not _is_member(cursor, name):
            raise UnknownRoleError(name)
        _execute(cursor, sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))


def bi_role_list(*, using: str = "default") -> list[BiRole]:
    """The BI login roles, members of ``reporting_reader``."""
    with connections[using].cursor() as cursor:
        cursor.execute(
            "SELECT r.rolname FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member "
            "JOIN pg_roles g ON g.oid = m.roleid WHERE g.rolname = %s ORDER BY r.rolname",
            [GROUP],
        )
        names = [row[0] for row in cursor.fetchall()]
    return [_role(name, using) for name in names]


def _role(name: str, using: str) -> BiRole:
    with connections[using].cursor() as cursor:
        cursor.execute(
            "SELECT r.rolconnlimit, coalesce(s.setconfig, '{}') FROM pg_roles r "
            "LEFT JOIN pg_db_role_setting s ON s.setrole = r.oid AND s.setdatabase = 0 WHERE r.rolname = %s",
            [name],
        )
        limit, settings = cursor.fetchone()
    return BiRole(name=name, connection_limit=limit, settings=list(settings))


# What "nothing else" means, checked from PostgreSQL's own privilege functions.
EXTRA_TABLE_PRIVILEGES_SQL = """
SELECT n.nspname, c.relname, p.privilege
FROM pg_class AS c
JOIN pg_namespace AS n ON n.oid = c.relnamespace
CROSS JOIN unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER'])
    AS p (privilege)
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg_toast%%' AND n.nspname NOT LIKE 'pg_temp%%'
  AND NOT (n.nspname = %(schema)s AND p.privilege = 'SELECT' AND c.relkind IN ('v', 'm'))
  AND has_table_privilege(%(group)s, c.oid, p.privilege)
ORDER BY 1, 2, 3
"""
EXTRA_SCHEMA_PRIVILEGES_SQL = """
SELECT n.nspname FROM pg_namespace AS n
WHERE n.nspname NOT LIKE 'pg_%%' AND n.nspname <> 'information_schema'
  AND has_schema_privilege(%(group)s, n.oid, 'CREATE')
"""


def bi_grants_check(*, using: str = "default") -> list[GrantGap]:
    """Find what the group cannot read that it should, and what it can do that it should not.

    Returns:
        The gaps; empty when every reporting view is readable and nothing else is.
    """
    gaps: list[GrantGap] = []
    with connections[using].cursor() as cursor:
        if not _role_exists(cursor, GROUP):
            return [GrantGap("missing", "exist as a role", "(run bi_role create)")]
        params = {"group": GROUP, "schema": SCHEMA}
        cursor.execute("SELECT has_database_privilege(%(group)s, current_database(), 'CONNECT')", params)
        if not cursor.fetchone()[0]:
            gaps.append(GrantGap("missing", "CONNECT on", "this database"))
        cursor.execute("SELECT has_schema_privilege(%(group)s, %(schema)s, 'USAGE')", params)
        if not cursor.fetchone()[0]:
            gaps.append(GrantGap("missing", "USAGE on schema", SCHEMA))
        for relation in _reporting_relations(cursor):
            cursor.execute(
                "SELECT has_table_privilege(%s, %s::regclass, 'SELECT')", [GROUP, f"{SCHEMA}.{relation}"]
            )
            if not cursor.fetchone()[0]:
                gaps.append(GrantGap("missing", "SELECT on", f"{SCHEMA}.{relation}"))
        cursor.execute(EXTRA_TABLE_PRIVILEGES_SQL, params)
        gaps += [
            GrantGap("extra", privilege, f"{schema}.{name}") for schema, name, privilege in cursor.fetchall()
        ]
        cursor.execute(EXTRA_SCHEMA_PRIVILEGES_SQL, params)
        gaps += [GrantGap("extra", "CREATE in schema", schema) for (schema,) in cursor.fetchall()]
    return gaps
