"""Read-only PostgreSQL roles for BI tools (Metabase, Superset, psql ...), their grants and limits.

A NOLOGIN group role (``REPORTING_BI_GROUP``, default ``reporting_reader``)
holds every privilege: CONNECT on the database, USAGE on the reporting schema
(``REPORTING_SCHEMA``) and SELECT on the views this project declares there, by
name, and on nothing else. BI users are LOGIN roles that are members of it,
with a read-only default transaction, a statement timeout, an idle-in-
transaction timeout and a connection limit. The plain views run with their
owner's rights, so real-time views work without any grant on the source tables.

What a BI role can change and what holds anyway (see "BI tools" in the README):

* PostgreSQL lets every role change its own settings, in its session
  (``SET statement_timeout = 0``) and as its defaults (``ALTER ROLE <self> SET``).
  So the limits a role was created with are recorded in a table it cannot touch
  (:class:`~reporting.models.BiRoleLimits`); :func:`bi_watchdog_run`, run by the
  scheduler, cancels its statements past their timeout and ends its sessions
  idle in a transaction past theirs; :func:`bi_grants_check` reports settings
  that drifted; :func:`bi_roles_repair` restores them.
* Read-only does not rest on ``default_transaction_read_only``, which the role
  can switch off, but on privileges: it has no write privilege on anything and
  CREATE on no schema. The connection limit is a role attribute that only a role
  with CREATEROLE can change.
* Temporary tables: PostgreSQL grants TEMPORARY on every database to PUBLIC, and
  it cannot be taken from one role while PUBLIC has it. They are private to the
  session and gone with it, and BI tools use them; so they are allowed, and
  :func:`bi_notes` says how a database owner can revoke them for everyone.

Grants are re-applied after every pgviews-redux sync (``all_views_synced``),
which may have dropped and recreated views with their grants. No default
privileges: they would make *any* relation created in the schema readable,
including ones this project did not create.

Role names must be plain lower-case identifiers and are always quoted;
passwords are hashed on the client (SCRAM-SHA-256, as psql's ``\\password``
does) so the plaintext never reaches the server or its logs.
"""

from __future__ import annotations

__all__ = [
    "BiRole",
    "ForeignSchemaObjectsError",
    "GrantGap",
    "RoleSettings",
    "WatchdogAction",
    "WatchdogBlindError",
    "bi_comments_apply",
    "bi_grants_apply",
    "bi_grants_check",
    "bi_notes",
    "bi_role_create",
    "bi_role_drop",
    "bi_role_list",
    "bi_role_rotate_password",
    "bi_roles_repair",
    "bi_watchdog_run",
    "declared_views",
    "group",
    "reporting_schema_create",
    "schema_foreign_objects",
    "validated_role_name",
]

import logging
import re
from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.db import connections, transaction
from django_pgviews import view as pg
from psycopg import sql

from reporting import conf
from reporting.exceptions import InvalidParameterError, ReportingError
from reporting.matviews import SCHEMA
from reporting.models import BiRoleLimits

logger = logging.getLogger(__name__)

ROLE_NAME_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
DURATION_RE = re.compile(r"([1-9][0-9]{0,8})(ms|s|min|h)?")
_UNIT_MS = {"ms": 1, "": 1, "s": 1000, "min": 60_000, "h": 3_600_000}


def group() -> str:
    """The group role of BI logins (``REPORTING_BI_GROUP``)."""
    return conf.bi_group()


class UnknownRoleError(ReportingError, LookupError):
    def __init__(self, name: str) -> None:
        super().__init__(f"no BI role named {name!r} (a member of {group()})")


class ForeignSchemaObjectsError(ReportingError):
    """The reporting schema holds objects that this project did not create."""

    def __init__(self, objects: list[str]) -> None:
        self.objects = objects
        shown = ", ".join(objects[:5]) + (f" and {len(objects) - 5} more" if len(objects) > 5 else "")
        super().__init__(
            f"schema {SCHEMA!r} already holds objects this project did not create ({shown}), and BI "
            f"roles are given USAGE on it: choose another schema with REPORTING_SCHEMA, or set "
            f"REPORTING_SCHEMA_TAKE_OVER=1 to create the views next to them (they stay unreadable "
            f"to BI roles)"
        )


@dataclass(frozen=True)
class RoleSettings:
    """The limits of a BI login role."""

    connection_limit: int = 5
    statement_timeout: str = "30s"
    idle_in_transaction_session_timeout: str = "60s"
    # Enforced by the watchdog alone (PostgreSQL 17's transaction_timeout would
    # be one more setting the role can switch off).
    transaction_timeout: str = "10min"

    def parameters(self) -> dict[str, str]:
        """The role's settings (``ALTER ROLE ... SET``), as PostgreSQL shows them back."""
        return {
            "default_transaction_read_only": "on",
            "statement_timeout": self.statement_timeout,
            "idle_in_transaction_session_timeout": self.idle_in_transaction_session_timeout,
            "search_path": SCHEMA,
        }

    @classmethod
    def of(cls, limits: BiRoleLimits) -> RoleSettings:
        return cls(
            connection_limit=limits.connection_limit,
            statement_timeout=limits.statement_timeout,
            idle_in_transaction_session_timeout=limits.idle_in_transaction_session_timeout,
            transaction_timeout=limits.transaction_timeout,
        )


@dataclass(frozen=True)
class BiRole:
    name: str
    connection_limit: int
    settings: list[str]
    #: The recorded transaction timeout, which the watchdog enforces (``None``: none recorded).
    transaction_timeout: str | None = None


@dataclass(frozen=True)
class GrantGap:
    """Something a BI role can do that it should not, or cannot that it should.

    ``kind``: ``missing`` (a privilege the group lacks), ``extra`` (one it should
    not have), ``foreign`` (an object in the reporting schema that this project
    did not create) or ``drift`` (a BI role's settings differ from its limits).
    """

    kind: str
    privilege: str
    target: str

    def __str__(self) -> str:
        if self.kind == "foreign":
            return f"{self.target} is in schema {SCHEMA} but is not one of this project's views"
        if self.kind == "drift":
            return f"BI role {self.target}: {self.privilege}"
        verb = "cannot" if self.kind == "missing" else "can"
        return f"{group()} {verb} {self.privilege} {self.target}"


def duration_ms(value: str) -> int:
    """Milliseconds of a PostgreSQL duration such as ``500ms``, ``30s``, ``5min`` (no unit: ms)."""
    match = DURATION_RE.fullmatch(value)
    if match is None:
        raise InvalidParameterError("duration", value, "a duration such as 500ms, 30s, 5min")
    return int(match.group(1)) * _UNIT_MS[match.group(2) or ""]


def validated_role_name(name: object) -> str:
    """Return ``name`` if it can name a BI login role.

    Raises:
        InvalidParameterError: not a plain lower-case identifier, or the group's own name.
    """
    if isinstance(name, str) and name == group():
        raise InvalidParameterError("role name", name, "any name but the BI group's own")
    if not isinstance(name, str) or not ROLE_NAME_RE.match(name):
        raise InvalidParameterError(
            "role name", name, "lower-case letters, digits and _, starting with a letter or _, at most 63"
        )
    return name


def _validated_password(password: object) -> str:
    if not isinstance(password, str) or len(password) < 12:
        raise InvalidParameterError("password", "***", "at least 12 characters")
    return password


def _validated_settings(role_settings: RoleSettings) -> RoleSettings:
    if (
        not isinstance(role_settings.connection_limit, int)
        or isinstance(role_settings.connection_limit, bool)
        or not 1 <= role_settings.connection_limit <= 1000
    ):
        raise InvalidParameterError(
            "connection limit", role_settings.connection_limit, "an integer from 1 to 1000"
        )
    for name in ("statement_timeout", "idle_in_transaction_session_timeout", "transaction_timeout"):
        value = getattr(role_settings, name)
        if not isinstance(value, str) or not DURATION_RE.fullmatch(value):
            raise InvalidParameterError(name.replace("_", " "), value, "a duration such as 500ms, 30s, 5min")
    return role_settings


def _execute(cursor: Any, query: sql.Composable | str, params: Any = None) -> None:
    cursor.execute(query.as_string(cursor.connection) if isinstance(query, sql.Composable) else query, params)


def _role_exists(cursor: Any, name: str) -> bool:
    cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [name])
    return cursor.fetchone() is not None


# The BI logins: members of the group, but not the roles that administer it.
# From PostgreSQL 16 a role with CREATEROLE that creates the group becomes its
# member WITH ADMIN OPTION: the project's own database user, which is no BI role.
BI_MEMBERS_SQL = """
SELECT m.member FROM pg_auth_members AS m
JOIN pg_roles AS g ON g.oid = m.roleid
JOIN pg_roles AS r ON r.oid = m.member
WHERE g.rolname = %s AND NOT m.admin_option AND NOT r.rolsuper AND r.rolname <> current_user
"""
MEMBERS_SQL = f"""
SELECT rolname FROM pg_roles WHERE oid IN ({BI_MEMBERS_SQL}) ORDER BY rolname
"""  # noqa: S608 - a constant


def _members(cursor: Any) -> list[str]:
    cursor.execute(MEMBERS_SQL, [group()])
    return [row[0] for row in cursor.fetchall()]


def _password_verifier(cursor: Any, name: str, password: str) -> str:
    """SCRAM-SHA-256 verifier computed by libpq on this side, like psql's \\password."""
    pgconn = cursor.connection.pgconn
    return pgconn.encrypt_password(password.encode(), name.encode(), b"scram-sha-256").decode()


# --- The schema and its grants -----------------------------------------------------------------------------


def declared_views() -> list[str]:
    """The names of the views (plain and materialized) this project declares in the reporting schema."""
    names = []
    for model in apps.get_models():
        if isinstance(model, type) and issubclass(model, pg.View):
            schema, _, name = model._meta.db_table.rpartition(".")
            if schema == SCHEMA:
                names.append(name)
    return sorted(names)


# Everything in the schema that has a name of its own: relations (a view's or
# table's indexes and row type go with it), functions and free-standing types.
SCHEMA_OBJECTS_SQL = """
SELECT c.relname, CASE c.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'table' WHEN 'v' THEN 'view'
    WHEN 'm' THEN 'materialized view' WHEN 'f' THEN 'foreign table' WHEN 'S' THEN 'sequence'
    WHEN 'c' THEN 'type' END
FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE n.nspname = %(schema)s AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S', 'c')
UNION ALL
SELECT p.proname || '()', 'function'
FROM pg_proc AS p JOIN pg_namespace AS n ON n.oid = p.pronamespace
WHERE n.nspname = %(schema)s
UNION ALL
SELECT t.typname, 'type'
FROM pg_type AS t JOIN pg_namespace AS n ON n.oid = t.typnamespace
WHERE n.nspname = %(schema)s AND t.typtype IN ('d', 'e', 'r', 'm')
ORDER BY 1
"""


# Views earlier versions created in the schema, which a migration drops: ours, not foreign.
RETIRED_VIEWS = frozenset({"pending_changes", "snapshot_state"})


def schema_foreign_objects(*, using: str = "default") -> list[str]:
    """The objects in the reporting schema that are not this project's views, as ``kind schema.name``."""
    declared = set(declared_views()) | RETIRED_VIEWS
    with connections[using].cursor() as cursor:
        cursor.execute(SCHEMA_OBJECTS_SQL, {"schema": SCHEMA})
        rows = cursor.fetchall()
    return [f"{kind} {SCHEMA}.{name}" for name, kind in rows if name not in declared]


def reporting_schema_create(*, using: str = "default") -> None:
    """Create the reporting schema, unless it exists with objects this project did not create.

    Run before every ``migrate`` (the views are then created in it).

    Raises:
        ForeignSchemaObjectsError: the schema holds other objects and
            ``REPORTING_SCHEMA_TAKE_OVER`` is off. Nothing is changed.
    """
    foreign = schema_foreign_objects(using=using)
    if foreign and not conf.schema_take_over():
        raise ForeignSchemaObjectsError(foreign)
    with connections[using].cursor() as cursor:
        _execute(cursor, sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(SCHEMA)))


def bi_grants_apply(*, using: str = "default", create_group: bool = False) -> bool:
    """Grant the group what it needs on this database, and nothing more.

    Idempotent; safe to run after every migration or view sync. It changes no
    privilege of anyone else: only the group's, and PUBLIC's on the reporting
    schema, which this project owns.

    Args:
        using: the database alias.
        create_group: create the NOLOGIN group role if it does not exist. Without
            it, a missing group (no BI role was ever created) means nothing to do.

    Returns:
        Whether the grants were applied (``False``: no group role).
    """
    connection = connections[using]
    with transaction.atomic(using=using), connection.cursor() as cursor:
        if not _role_exists(cursor, group()):
            if not create_group:
                return False
            _execute(cursor, sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(group())))
        group_id, schema = sql.Identifier(group()), sql.Identifier(SCHEMA)
        cursor.execute("SELECT current_database()")
        database = sql.Identifier(cursor.fetchone()[0])
        _execute(cursor, sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(database, group_id))
        _execute(cursor, sql.SQL("REVOKE ALL ON SCHEMA {} FROM PUBLIC").format(schema))
        _execute(cursor, sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(schema, group_id))
        for view in _existing(cursor, declared_views()):
            _execute(
                cursor, sql.SQL("GRANT SELECT ON {} TO {}").format(sql.Identifier(SCHEMA, view), group_id)
            )
        # Earlier versions made every table created in the schema readable by
        # default; take that back, so a foreign table never is.
        _execute(
            cursor,
            sql.SQL("ALTER DEFAULT PRIVILEGES IN SCHEMA {} REVOKE SELECT ON TABLES FROM {}").format(
                schema, group_id
            ),
        )
    logger.debug("Granted %s read access to the views of schema %s", group(), SCHEMA)
    return True


def bi_comments_apply(*, using: str = "default") -> int:
    """Write the declared views' comments (``Meta.db_table_comment``, fields' ``db_comment``) to PostgreSQL.

    BI tools show them in their catalogs. Run after every view sync: a rebuilt
    view loses its comments.

    Returns:
        How many comments were written.
    """
    written = 0
    with transaction.atomic(using=using), connections[using].cursor() as cursor:
        existing = set(_existing(cursor, declared_views()))
        for model in apps.get_models():
            schema, _, name = model._meta.db_table.rpartition(".")
            if not (isinstance(model, type) and issubclass(model, pg.View)) or schema != SCHEMA:
                continue
            if name not in existing:
                continue
            kind = sql.SQL("MATERIALIZED VIEW" if issubclass(model, pg.MaterializedView) else "VIEW")
            target = sql.Identifier(SCHEMA, name)
            if model._meta.db_table_comment:
                _execute(
                    cursor,
                    sql.SQL("COMMENT ON {} {} IS {}").format(
                        kind, target, sql.Literal(model._meta.db_table_comment)
                    ),
                )
                written += 1
            for field in model._meta.concrete_fields:
                if field.db_comment:
                    _execute(
                        cursor,
                        sql.SQL("COMMENT ON COLUMN {} IS {}").format(
                            sql.Identifier(SCHEMA, name, field.column or field.name),
                            sql.Literal(field.db_comment),
                        ),
                    )
                    written += 1
    return written


def _existing(cursor: Any, views: list[str]) -> list[str]:
    cursor.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relname = ANY(%s) AND c.relkind IN ('v', 'm') ORDER BY 1",
        [SCHEMA, views],
    )
    return [row[0] for row in cursor.fetchall()]


# --- Roles -------------------------------------------------------------------------------------------------


def _apply_role_settings(cursor: Any, name: str, role_settings: RoleSettings, using: str) -> None:
    """Make the role's limits what ``role_settings`` says, and record them."""
    role = sql.Identifier(name)
    _execute(
        cursor,
        sql.SQL("ALTER ROLE {} CONNECTION LIMIT {}").format(
            role, sql.Literal(role_settings.connection_limit)
        ),
    )
    # Settings the role gave itself, in any database, go first.
    cursor.execute(
        "SELECT d.datname FROM pg_db_role_setting s LEFT JOIN pg_database d ON d.oid = s.setdatabase "
        "WHERE s.setrole = %s::regrole",
        [name],
    )
    for (database,) in cursor.fetchall():
        if database is None:
            _execute(cursor, sql.SQL("ALTER ROLE {} RESET ALL").format(role))
        else:
            _execute(
                cursor,
                sql.SQL("ALTER ROLE {} IN DATABASE {} RESET ALL").format(role, sql.Identifier(database)),
            )
    for parameter, value in role_settings.parameters().items():
        _execute(
            cursor,
            sql.SQL("ALTER ROLE {} SET {} = {}").format(role, sql.Identifier(parameter), sql.Literal(value)),
        )
    BiRoleLimits.objects.using(using).update_or_create(
        name=name,
        defaults={
            "connection_limit": role_settings.connection_limit,
            "statement_timeout": role_settings.statement_timeout,
            "idle_in_transaction_session_timeout": role_settings.idle_in_transaction_session_timeout,
            "transaction_timeout": role_settings.transaction_timeout,
        },
    )


def bi_role_create(
    *, name: str, password: str, role_settings: RoleSettings | None = None, using: str = "default"
) -> BiRole:
    """Create a BI login role, a member of the BI group, and record its limits.

    Args:
        name: the role name: lower-case letters, digits and ``_``.
        password: at least 12 characters; sent to the server only as a SCRAM verifier.
        role_settings: connection limit and timeouts; the defaults otherwise.
        using: the database alias.

    Raises:
        InvalidParameterError: a bad name, password or setting; nothing is created.
        ReportingError: the role exists already.
    """
    name = validated_role_name(name)
    password = _validated_password(password)
    role_settings = _validated_settings(role_settings or RoleSettings())
    bi_grants_apply(using=using, create_group=True)
    connection = connections[using]
    with transaction.atomic(using=using), connection.cursor() as cursor:
        if _role_exists(cursor, name):
            raise ReportingError(f"a role named {name!r} exists already")
        _execute(
            cursor,
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {} IN ROLE {}").format(
                sql.Identifier(name),
                sql.Literal(_password_verifier(cursor, name, password)),
                sql.Identifier(group()),
            ),
        )
        _apply_role_settings(cursor, name, role_settings, using)
    logger.info("Created BI role %s", name)
    return _role(name, using)


def bi_role_rotate_password(*, name: str, password: str, using: str = "default") -> None:
    """Give a BI role a new password. Sessions already open stay open.

    Raises:
        InvalidParameterError: a bad name or password.
        UnknownRoleError: no BI role has that name.
    """
    name = validated_role_name(name)
    password = _validated_password(password)
    with transaction.atomic(using=using), connections[using].cursor() as cursor:
        if name not in _members(cursor):
            raise UnknownRoleError(name)
        _execute(
            cursor,
            sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                sql.Identifier(name), sql.Literal(_password_verifier(cursor, name, password))
            ),
        )


def bi_role_drop(*, name: str, using: str = "default") -> None:
    """Drop a BI login role (only members of the BI group can be dropped here).

    Raises:
        UnknownRoleError: no BI role has that name.
    """
    name = validated_role_name(name)
    with transaction.atomic(using=using), connections[using].cursor() as cursor:
        if name not in _members(cursor):
            raise UnknownRoleError(name)
        _execute(cursor, sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))
        BiRoleLimits.objects.using(using).filter(name=name).delete()


def bi_role_list(*, using: str = "default") -> list[BiRole]:
    """The BI login roles, members of the BI group."""
    with connections[using].cursor() as cursor:
        names = _members(cursor)
    return [_role(name, using) for name in names]


def _role(name: str, using: str) -> BiRole:
    with connections[using].cursor() as cursor:
        cursor.execute(
            "SELECT r.rolconnlimit, coalesce(s.setconfig, '{}') FROM pg_roles r "
            "LEFT JOIN pg_db_role_setting s ON s.setrole = r.oid AND s.setdatabase = 0 WHERE r.rolname = %s",
            [name],
        )
        limit, settings = cursor.fetchone()
    recorded = _recorded_settings(name, using)
    return BiRole(
        name=name,
        connection_limit=limit,
        settings=list(settings),
        transaction_timeout=recorded.transaction_timeout if recorded else None,
    )


def _recorded_settings(name: str, using: str) -> RoleSettings | None:
    limits = BiRoleLimits.objects.using(using).filter(name=name).first()
    return RoleSettings.of(limits) if limits else None


def bi_roles_repair(*, using: str = "default") -> list[str]:
    """Re-apply the grants, and every BI role's recorded limits (its settings and connection limit).

    A role with no recorded limits (made by hand, or by an earlier version) gets
    the defaults, which are then recorded.

    Returns:
        The names of the roles whose limits were applied.
    """
    bi_grants_apply(using=using, create_group=True)
    with transaction.atomic(using=using), connections[using].cursor() as cursor:
        names = _members(cursor)
        for name in names:
            _apply_role_settings(cursor, name, _recorded_settings(name, using) or RoleSettings(), using)
    return names


# --- Checks ------------------------------------------------------------------------------------------------

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
    expected = _recorded_settings(name, using)
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
        if not _role_exists(cursor, group()):
            return [GrantGap("missing", "exist as a role", "(run bi_role create)")]
        params: dict[str, Any] = {"group": group(), "schema": SCHEMA, "declared": declared_views()}
        cursor.execute("SELECT has_database_privilege(%(group)s, current_database(), 'CONNECT')", params)
        if not cursor.fetchone()[0]:
            gaps.append(GrantGap("missing", "CONNECT on", "this database"))
        cursor.execute("SELECT has_schema_privilege(%(group)s, %(schema)s, 'USAGE')", params)
        if not cursor.fetchone()[0]:
            gaps.append(GrantGap("missing", "USAGE on schema", SCHEMA))
        for view in _existing(cursor, declared_views()):
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
        for name in _members(cursor):
            gaps += _role_drift(cursor, name, using)
    gaps += [GrantGap("foreign", "", target) for target in schema_foreign_objects(using=using)]
    return gaps


def bi_notes(*, using: str = "default") -> list[str]:
    """What BI roles can do by PostgreSQL's defaults that this project leaves alone, with the remedy."""
    notes: list[str] = []
    with connections[using].cursor() as cursor:
        if not _role_exists(cursor, group()):
            return notes
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
        cursor.execute("SELECT has_schema_privilege('public', 'public', 'CREATE')")
        if cursor.fetchone()[0]:
            notes.append(
                "every role can create objects in schema public (PostgreSQL 14 and older); to forbid it: "
                "REVOKE CREATE ON SCHEMA public FROM PUBLIC"
            )
    return notes


# --- The watchdog ------------------------------------------------------------------------------------------


class WatchdogBlindError(ReportingError):
    """The watchdog's database user cannot see the BI sessions it must watch."""


@dataclass(frozen=True)
class WatchdogAction:
    """A BI statement the watchdog cancelled, or a BI session it ended, and why."""

    action: str  # "cancelled" or "terminated"
    pid: int
    role: str
    reason: str
    query: str


# The sessions of BI roles, in any database of the cluster (roles are the
# cluster's, and PostgreSQL lets every role connect to a database that grants
# CONNECT to PUBLIC), with what the watchdog judges them by. hostile_lock: a
# lock, in this database, that no read takes: any mode but ACCESS SHARE on a
# relation that is not the session's own temporary one. A statement that is
# only parsed (PREPARE) takes its locks before its privileges are checked and
# keeps them to the end of its transaction, so a role without any privilege on
# a table can still hold, say, ROW SHARE on it and block a refresh or a migration.
BI_SESSIONS_SQL = f"""
SELECT a.pid, a.usename, a.state, a.query_start, a.state_change, a.xact_start,
       extract(epoch FROM clock_timestamp() - a.query_start),
       extract(epoch FROM clock_timestamp() - a.state_change),
       extract(epoch FROM clock_timestamp() - a.xact_start),
       (SELECT string_agg(DISTINCT l.mode || ' on ' || c.oid::regclass::text, ', ')
        FROM pg_locks AS l
        JOIN pg_class AS c ON c.oid = l.relation
        JOIN pg_namespace AS n ON n.oid = c.relnamespace
        WHERE l.pid = a.pid AND l.granted AND l.locktype = 'relation'
          AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
          AND l.mode <> 'AccessShareLock'
          AND n.nspname NOT LIKE 'pg_temp%%' AND n.nspname NOT LIKE 'pg_toast_temp%%'),
       left(a.query, 200)
FROM pg_stat_activity AS a
WHERE a.pid <> pg_backend_pid()
  AND a.usesysid IN ({BI_MEMBERS_SQL})
"""  # noqa: S608 - a constant
# Cancel or end the session only if it is still the one that was judged: the
# statement may have ended meanwhile, and its session's next one is innocent.
CANCEL_SQL = """
SELECT pg_cancel_backend(pid) FROM pg_stat_activity
WHERE pid = %s AND state = 'active' AND query_start = %s
"""
TERMINATE_SQL = """
SELECT pg_terminate_backend(pid) FROM pg_stat_activity
WHERE pid = %s AND xact_start IS NOT DISTINCT FROM %s
"""


def _judge(row: tuple[Any, ...], settings: RoleSettings, grace: float) -> tuple[str, str] | None:
    """What to do with one BI session, and why: ``("cancel" | "terminate", reason)``, or ``None``."""
    _, _, state, query_start, state_change, xact_start, running, idle, in_xact, locks, _ = row
    if locks:
        return "terminate", f"it holds {locks}, which no read needs"
    transaction_limit = duration_ms(settings.transaction_timeout) / 1000
    if xact_start is not None and in_xact > transaction_limit:
        return (
            "terminate",
            f"its transaction is {in_xact:.1f} s old, over its limit of {transaction_limit:g} s",
        )
    if state == "active" and query_start is not None:
        limit = duration_ms(settings.statement_timeout) / 1000
        if running > limit + grace:
            # Cancelled a round ago and still running: it catches the cancel (PL/pgSQL can).
            return (
                "terminate",
                f"its statement ran {running:.1f} s, over its limit of {limit:g} s, after a cancel",
            )
        if running > limit:
            return "cancel", f"its statement ran {running:.1f} s, over its limit of {limit:g} s"
    elif state is not None and state.startswith("idle in transaction") and state_change is not None:
        limit = duration_ms(settings.idle_in_transaction_session_timeout) / 1000
        if idle > limit:
            return (
                "terminate",
                f"it was idle in a transaction for {idle:.1f} s, over its limit of {limit:g} s",
            )
    return None


def bi_watchdog_run(*, using: str = "default", grace: float | None = None) -> list[WatchdogAction]:
    """Hold BI sessions to their recorded limits, whatever they set for themselves.

    For every session of a BI role, in any database of the cluster:

    * a lock that no read takes (any mode but ACCESS SHARE on a relation of this
      database that is not its own temporary one): the session is ended;
    * a transaction older than the role's transaction timeout: the session is ended;
    * a statement running longer than the role's statement timeout: it is cancelled,
      and if it still runs ``grace`` seconds later (a PL/pgSQL block can catch a
      cancel), the session is ended;
    * idle in a transaction longer than the role's idle timeout: the session is
      ended, as PostgreSQL itself would.

    Each action is logged. Needs a superuser, or a member of ``pg_signal_backend``
    and ``pg_read_all_stats``.

    Args:
        using: the database alias.
        grace: seconds between a cancel and the end of a session that ignores it;
            by default the watchdog's interval, at least one second.

    Returns:
        What it did.

    Raises:
        WatchdogBlindError: its database user cannot see other roles' sessions.
    """
    if grace is None:
        grace = max(conf.bi_watchdog_interval(), 1.0)
    limits = {row.name: RoleSettings.of(row) for row in BiRoleLimits.objects.using(using).all()}
    actions: list[WatchdogAction] = []
    with connections[using].cursor() as cursor:
        cursor.execute(BI_SESSIONS_SQL, [group()])
        rows = cursor.fetchall()
        if any(row[-1] == "<insufficient privilege>" for row in rows):
            # pg_stat_activity hides other roles' sessions from a role without
            # pg_read_all_stats: the watchdog would see nothing to stop.
            raise WatchdogBlindError(
                "the BI watchdog cannot see BI sessions: its database user needs pg_read_all_stats "
                "(and pg_signal_backend), or to be a superuser"
            )
        for row in rows:
            pid, role, _, query_start, _, xact_start = row[:6]
            verdict = _judge(row, limits.get(role, RoleSettings()), grace)
            if verdict is None:
                continue
            what, reason = verdict
            if what == "cancel":
                cursor.execute(CANCEL_SQL, [pid, query_start])
            else:
                cursor.execute(TERMINATE_SQL, [pid, xact_start])
            if cursor.fetchone():
                action = "cancelled" if what == "cancel" else "terminated"
                actions.append(WatchdogAction(action, pid, role, reason, row[-1]))
    for act in actions:
        what = "the statement" if act.action == "cancelled" else "the session"
        logger.warning(
            "BI watchdog %s %s of role %s (pid %d): %s: %s",
            act.action,
            what,
            act.role,
            act.pid,
            act.reason,
            act.query,
        )
    return actions
