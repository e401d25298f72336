"""Reads about BI roles: who they are, and what they can do that they should not."""

from __future__ import annotations

__all__ = ["bi_grants_check", "bi_notes", "bi_role", "bi_role_list", "schema_foreign_objects"]

from typing import Any

from django.db import connections
from psycopg import sql

from reporting.bi import (
    RETIRED_VIEWS,
    SCHEMA_OBJECTS_SQL,
    BiRole,
    GrantGap,
    bi_prepared_transactions,
    declared_views,
    existing_views,
    group,
    members,
    recorded_elsewhere,
    recorded_settings,
    role_exists,
)
from reporting.models import BiRoleLockout
from reporting.sql_files import SCHEMA


def schema_foreign_objects(*, using: str = "default") -> list[str]:
    """The objects in the reporting schema that are not this project's views, as ``kind schema.name``."""
    declared = set(declared_views()) | RETIRED_VIEWS
    with connections[using].cursor() as cursor:
        cursor.execute(SCHEMA_OBJECTS_SQL, {"schema": SCHEMA})
        rows = cursor.fetchall()
    return [f"{kind} {SCHEMA}.{name}" for name, kind in rows if name not in declared]


def bi_role_list(*, using: str = "default") -> list[BiRole]:
    """The BI login roles, members of the BI group."""
    with connections[using].cursor() as cursor:
        names = members(cursor)
    return [bi_role(name, using) for name in names]


def bi_role(name: str, using: str) -> BiRole:
    with connections[using].cursor() as cursor:
        cursor.execute(
            "SELECT r.rolconnlimit, coalesce(s.setconfig, '{}') FROM pg_roles r "
            "LEFT JOIN pg_db_role_setting s ON s.setrole = r.oid AND s.setdatabase = 0 WHERE r.rolname = %s",
            [name],
        )
        limit, settings = cursor.fetchone()
    recorded = recorded_settings(name, using)
    lockout = BiRoleLockout.objects.using(using).filter(name=name).first()
    return BiRole(
        name=name,
        connection_limit=limit,
        settings=list(settings),
        transaction_timeout=recorded.transaction_timeout if recorded else None,
        locked_out=_lockout_words(lockout) if lockout else None,
    )


def _lockout_words(lockout: BiRoleLockout) -> str:
    return (
        f"locked out (NOLOGIN) by the BI watchdog at {lockout.locked_at.isoformat(timespec='seconds')}, "
        f"after {lockout.terminations} terminations within {lockout.window:g} s; the last for: "
        f"{lockout.reason}; 'bi_role unlock {lockout.name}' lets it log in again"
    )


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
  AND NOT (n.nspname = %(schema)s AND p.privilege = 'SELECT' AND c.relname = ANY(%(declared)s))
  AND has_table_privilege(%(group)s, c.oid, p.privilege)
ORDER BY 1, 2, 3
"""
EXTRA_SCHEMA_PRIVILEGES_SQL = """
SELECT n.nspname FROM pg_namespace AS n
WHERE n.nspname NOT LIKE 'pg_%%' AND n.nspname <> 'information_schema'
  AND has_schema_privilege(%(group)s, n.oid, 'CREATE')
"""
# Every setting a role has, in any database: a role can add its own.
ROLE_SETTINGS_SQL = """
SELECT coalesce(d.datname, ''), unnest(s.setconfig)
FROM pg_db_role_setting AS s LEFT JOIN pg_database AS d ON d.oid = s.setdatabase
WHERE s.setrole = %s::regrole
"""


def _role_drift(cursor: Any, name: str, using: str) -> list[GrantGap]:
    expected = recorded_settings(name, using)
    if expected is None:
        return [GrantGap("drift", "has no recorded limits ('bi_role repair' records the defaults)", name)]
    gaps = []
    cursor.execute("SELECT rolconnlimit FROM pg_roles WHERE rolname = %s", [name])
    limit = cursor.fetchone()[0]
    if limit != expected.connection_limit:
        gaps.append(GrantGap("drift", f"connection limit {limit}, not {expected.connection_limit}", name))
    cursor.execute(ROLE_SETTINGS_SQL, [name])
    actual = {(database, setting) for database, setting in cursor.fetchall()}
    wanted = {("", f"{key}={value}") for key, value in expected.parameters().items()}
    for database, setting in sorted(actual - wanted):
        where = f" in database {database}" if database else ""
        gaps.append(GrantGap("drift", f"sets {setting}{where}", name))
    for _, setting in sorted(wanted - actual):
        gaps.append(GrantGap("drift", f"lacks {setting}", name))
    return gaps


def bi_grants_check(*, using: str = "default") -> list[GrantGap]:
    """Find what the BI roles cannot read that they should, and what they can do that they should not.

    Returns:
        The gaps, empty when every declared view is readable, nothing else is,
        the schema holds nothing but the project's views, and every BI role's
        settings are its recorded limits.
    """
    gaps: list[GrantGap] = []
    with connections[using].cursor() as cursor:
        if not role_exists(cursor, group()):
            return [GrantGap("missing", "exist as a role", "(run bi_role create)")]
        params: dict[str, Any] = {"group": group(), "schema": SCHEMA, "declared": declared_views()}
        cursor.execute("SELECT has_database_privilege(%(group)s, current_database(), 'CONNECT')", params)
        if not cursor.fetchone()[0]:
            gaps.append(GrantGap("missing", "CONNECT on", "this database"))
        cursor.execute("SELECT has_schema_privilege(%(group)s, %(schema)s, 'USAGE')", params)
        if not cursor.fetchone()[0]:
            gaps.append(GrantGap("missing", "USAGE on schema", SCHEMA))
        for view in existing_views(cursor, declared_views()):
            cursor.execute(
                "SELECT has_table_privilege(%s, %s::regclass, 'SELECT')",
                [group(), sql.Identifier(SCHEMA, view).as_string(cursor.connection)],
            )
            if not cursor.fetchone()[0]:
                gaps.append(GrantGap("missing", "SELECT on", f"{SCHEMA}.{view}"))
        cursor.execute(EXTRA_TABLE_PRIVILEGES_SQL, params)
        gaps += [
            GrantGap("extra", privilege, f"{schema}.{name}") for schema, name, privilege in cursor.fetchall()
        ]
        cursor.execute(EXTRA_SCHEMA_PRIVILEGES_SQL, params)
        gaps += [GrantGap("extra", "CREATE in schema", schema) for (schema,) in cursor.fetchall()]
        names = members(cursor)
        # Roles whose limits another database of the cluster records are checked there.
        elsewhere = recorded_elsewhere(cursor, names, using)
        for name in names:
            if name not in elsewhere:
                gaps += _role_drift(cursor, name, using)
        locked = BiRoleLockout.objects.using(using).filter(name__in=names).order_by("name")
        gaps += [GrantGap("locked", _lockout_words(lockout), lockout.name) for lockout in locked]
        gaps += [
            GrantGap(
                "prepared",
                f"{prepared}: 'ROLLBACK PREPARED {prepared.gid!r}' in that database ends it (the "
                "watchdog of this app rolls back those in its own database)",
                prepared.role,
            )
            for prepared in bi_prepared_transactions(cursor)
        ]
    gaps += [GrantGap("foreign", "", target) for target in schema_foreign_objects(using=using)]
    return gaps


def bi_notes(*, using: str = "default") -> list[str]:
    """What BI roles can do by PostgreSQL's defaults that this project leaves alone, with the remedy."""
    notes: list[str] = []
    with connections[using].cursor() as cursor:
        if not role_exists(cursor, group()):
            return notes
        for name, database in sorted(recorded_elsewhere(cursor, members(cursor), using).items()):
            notes.append(
                f"BI role {name} is recorded in database {database}, which made it: roles are the "
                f"cluster's, so its limits hold here too; check, repair and watch it from there"
            )
        cursor.execute("SELECT has_database_privilege(%s, current_database(), 'TEMPORARY')", [group()])
        if cursor.fetchone()[0]:
            cursor.execute("SELECT current_database()")
            database = sql.Identifier(cursor.fetchone()[0]).as_string(cursor.connection)
            notes.append(
                "BI roles can create temporary tables (TEMPORARY is granted to PUBLIC); to forbid them "
                f"for every role: REVOKE TEMPORARY ON DATABASE {database} FROM PUBLIC"
            )
        cursor.execute(
            "SELECT datname FROM pg_database WHERE datallowconn AND datname <> current_database() "
            "AND has_database_privilege(%s, datname, 'CONNECT') ORDER BY 1",
            [group()],
        )
        others = [row[0] for row in cursor.fetchall()]
        if others:
            names = ", ".join(sql.Identifier(name).as_string(cursor.connection) for name in others)
            notes.append(
                f"BI roles can connect to other databases of this cluster ({names}: CONNECT is "
                f"granted to PUBLIC there); the watchdog holds their sessions to their limits there "
                f"too. To forbid it: REVOKE CONNECT ON DATABASE <name> FROM PUBLIC"
            )
        cursor.execute("SELECT current_setting('max_prepared_transactions')::int")
        prepared_max = cursor.fetchone()[0]
        if prepared_max > 0:
            notes.append(
                f"max_prepared_transactions is {prepared_max}: a BI login can PREPARE TRANSACTION, which "
                "keeps its locks and its snapshot after its session ends; the BI watchdog rolls back "
                "every prepared transaction of a BI role in this database (and locks out a role that "
                "repeats it). Where nothing uses two-phase commit, set it to 0 (a restart)"
            )
        cursor.execute(
            "SELECT has_schema_privilege(%s, n.oid, 'USAGE') AND has_schema_privilege('public', n.oid, "
            "'USAGE') FROM pg_namespace AS n WHERE n.nspname = 'public'",
            [group()],
        )
        if (cursor.fetchone() or (False,))[0]:
            notes.append(
                "BI roles can name the tables in schema public (USAGE is granted to PUBLIC): they cannot "
                "read them, but PostgreSQL takes a statement's locks before it checks privileges, so a "
                "PREPAREd statement holds a weak lock on them; the BI watchdog ends such sessions. To "
                "forbid it: REVOKE USAGE ON SCHEMA public FROM PUBLIC, then GRANT USAGE ON SCHEMA "
                "public TO the roles that need it"
            )
        cursor.execute("SELECT has_schema_privilege('public', 'public', 'CREATE')")
        if cursor.fetchone()[0]:
            notes.append(
                "every role can create objects in schema public (PostgreSQL 14 and older); to forbid it: "
                "REVOKE CREATE ON SCHEMA public FROM PUBLIC"
            )
    return notes
