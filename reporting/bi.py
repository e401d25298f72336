"""Read-only PostgreSQL roles for BI tools (Metabase, Superset, psql ...), their grants and limits.

A NOLOGIN group role (``REPORTING_BI_GROUP``, default ``reporting_reader``)
holds every privilege: CONNECT on the database, USAGE on the reporting schema
(``REPORTING_SCHEMA``) and SELECT on the views this project declares there, by
name, and on nothing else. BI users are LOGIN roles that are members of it,
with a read-only default transaction, a statement timeout, an idle-in-
transaction timeout and a connection limit. The plain views run with their
owner's rights, so real-time views work without any grant on the source tables.

What a BI role can change and what holds anyway (see docs/bi.md):

* PostgreSQL lets every role change its own settings, in its session
  (``SET statement_timeout = 0``) and as its defaults (``ALTER ROLE <self> SET``).
  So the limits a role was created with are recorded in a table it cannot touch
  (:class:`~reporting.models.BiRoleLimits`); ``services.bi_watchdog_run``, run by the
  scheduler, cancels its statements past their timeout and ends its sessions
  idle in a transaction past theirs; ``selectors.bi_grants_check`` reports settings
  that drifted; ``services.bi_roles_repair`` restores them.
* Read-only does not rest on ``default_transaction_read_only``, which the role
  can switch off, but on privileges: it has no write privilege on anything and
  CREATE on no schema. The connection limit is a role attribute that only a role
  with CREATEROLE can change.
* Locks: PostgreSQL takes a statement's locks before it checks its privileges,
  so a ``PREPARE``d statement holds ROW SHARE or ROW EXCLUSIVE on any table the
  role can name (schema public is PUBLIC's) or reach through a view it reads,
  and ``PREPARE TRANSACTION`` keeps them after the session ends. No grant stops
  that: the watchdog ends such sessions, rolls back BI prepared transactions,
  and locks out (``NOLOGIN``, :class:`~reporting.models.BiRoleLockout`) a role
  ended too often (docs/deployment.md, "What a BI login cannot hold").
* Temporary tables: PostgreSQL grants TEMPORARY on every database to PUBLIC, and
  it cannot be taken from one role while PUBLIC has it. They are private to the
  session and gone with it, and BI tools use them; so they are allowed, and
  ``selectors.bi_notes`` says how a database owner can revoke them for everyone.

Grants are re-applied after every pgviews-redux sync (``all_views_synced``),
which may have dropped and recreated views with their grants. No default
privileges: they would make *any* relation created in the schema readable,
including ones this project did not create.

Role names must be plain lower-case identifiers and are always quoted;
passwords are hashed on the client (SCRAM-SHA-256, as psql's ``\\password``
does) so the plaintext never reaches the server or its logs.

This module holds what the reads (:mod:`reporting.selectors.bi`) and the writes
(:mod:`reporting.services.bi`) share: the roles' types, validation and catalog lookups.
"""

from __future__ import annotations

__all__ = [
    "RETIRED_VIEWS",
    "SCHEMA_OBJECTS_SQL",
    "BiRole",
    "ForeignSchemaObjectsError",
    "GrantGap",
    "PreparedTransaction",
    "RoleSettings",
    "UnknownRoleError",
    "WatchdogAction",
    "WatchdogBlindError",
    "bi_prepared_transactions",
    "declared_views",
    "duration_ms",
    "execute",
    "existing_views",
    "group",
    "home_comment",
    "members",
    "password_verifier",
    "recorded_elsewhere",
    "recorded_settings",
    "role_exists",
    "validated_password",
    "validated_role_name",
    "validated_settings",
]

import logging
import re
from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django_pgviews import view as pg
from psycopg import sql

from reporting import conf
from reporting.exceptions import InvalidParameterError, ReportingError
from reporting.models import BiRoleLimits
from reporting.sql_files import SCHEMA

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
            # Plain SQL on the real-time views plans a branch it rarely runs, whose
            # cost makes JIT compile for longer than the query runs (docs/deployment.md).
            "jit": "off",
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
    #: Why and since when the watchdog locked it out (``None``: it is not).
    locked_out: str | None = None


@dataclass(frozen=True)
class GrantGap:
    """Something a BI role can do that it should not, or cannot that it should.

    ``kind``: ``missing`` (a privilege the group lacks), ``extra`` (one it should
    not have), ``foreign`` (an object in the reporting schema that this project
    did not create), ``drift`` (a BI role's settings differ from its limits),
    ``locked`` (the watchdog locked a BI role out) or ``prepared`` (a BI role's
    prepared transaction, which holds its locks with no session).
    """

    kind: str
    privilege: str
    target: str

    def __str__(self) -> str:
        if self.kind == "foreign":
            return f"{self.target} is in schema {SCHEMA} but is not one of this project's views"
        if self.kind in ("drift", "locked"):
            return f"BI role {self.target}: {self.privilege}"
        if self.kind == "prepared":
            return self.privilege
        verb = "cannot" if self.kind == "missing" else "can"
        return f"{group()} {verb} {self.privilege} {self.target}"


# The largest timeout PostgreSQL takes (INT_MAX milliseconds, about 24.8 days).
MAX_TIMEOUT_MS = 2**31 - 1


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


def validated_password(password: object) -> str:
    """Return ``password`` if it is long enough for a BI role."""
    if not isinstance(password, str) or len(password) < 12:
        raise InvalidParameterError("password", "***", "at least 12 characters")
    return password


def validated_settings(role_settings: RoleSettings) -> RoleSettings:
    """Return ``role_settings`` if every limit in it is in range."""
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
        # PostgreSQL keeps these as milliseconds in an int: 99999999h would fail in the database.
        if (
            not isinstance(value, str)
            or not DURATION_RE.fullmatch(value)
            or duration_ms(value) > MAX_TIMEOUT_MS
        ):
            raise InvalidParameterError(
                name.replace("_", " "),
                value,
                "a duration such as 500ms, 30s, 5min, at most 24 days (2147483647ms)",
            )
    return role_settings


def execute(cursor: Any, query: sql.Composable | str, params: Any = None) -> None:
    cursor.execute(query.as_string(cursor.connection) if isinstance(query, sql.Composable) else query, params)


def role_exists(cursor: Any, name: str) -> bool:
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


def members(cursor: Any) -> list[str]:
    cursor.execute(MEMBERS_SQL, [group()])
    return [row[0] for row in cursor.fetchall()]


def password_verifier(cursor: Any, name: str, password: str) -> str:
    """SCRAM-SHA-256 verifier computed by libpq on this side, like psql's \\password."""
    pgconn = cursor.connection.pgconn
    return pgconn.encrypt_password(password.encode(), name.encode(), b"scram-sha-256").decode()


# --- The schema ---------------------------------------------------------------------------------------------


def declared_views() -> list[str]:
    """The names of the views (plain and materialized) this project declares in the reporting schema."""
    names = []
    for model in apps.get_models():
        if isinstance(model, type) and issubclass(model, pg.View):
            schema, _, name = model._meta.db_table.rpartition(".")
            if schema == SCHEMA:
                names.append(name)
    return sorted(names)


def existing_views(cursor: Any, views: list[str]) -> list[str]:
    cursor.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relname = ANY(%s) AND c.relkind IN ('v', 'm') ORDER BY 1",
        [SCHEMA, views],
    )
    return [row[0] for row in cursor.fetchall()]


def recorded_settings(name: str, using: str) -> RoleSettings | None:
    limits = BiRoleLimits.objects.using(using).filter(name=name).first()
    return RoleSettings.of(limits) if limits else None


# Roles are the cluster's, limits the database's: a BI role's limits are recorded
# in the database that made it (or last repaired it), which the role's comment
# names. Another database of the cluster with the same BI group sees the role as
# a member, but leaves it to its own database: its check, repair and watchdog.
# Only a superuser or a role with CREATEROLE can comment on a role.
HOME_COMMENT_PREFIX = "BI role of the reporting app; its limits are recorded in database "
HOME_SQL = """
SELECT r.rolname, substr(d.description, length(%(prefix)s) + 1)
FROM pg_roles AS r
JOIN pg_shdescription AS d ON d.objoid = r.oid AND d.classoid = 'pg_authid'::regclass
WHERE r.rolname = ANY(%(names)s) AND starts_with(d.description, %(prefix)s)
  AND substr(d.description, length(%(prefix)s) + 1) <> current_database()
  AND substr(d.description, length(%(prefix)s) + 1) IN (SELECT datname FROM pg_database)
"""


def home_comment(database: str) -> str:
    """The comment that names ``database`` as the one recording a BI role's limits."""
    return HOME_COMMENT_PREFIX + database


def recorded_elsewhere(cursor: Any, names: list[str], using: str) -> dict[str, str]:
    """The roles among ``names`` whose limits another database of the cluster records, with its name.

    A role recorded here is this database's, whatever its comment says; a role
    whose comment names a database that no longer exists is nobody's (``bi_role
    repair`` adopts it).
    """
    local = set(BiRoleLimits.objects.using(using).filter(name__in=names).values_list("name", flat=True))
    cursor.execute(HOME_SQL, {"names": [n for n in names if n not in local], "prefix": HOME_COMMENT_PREFIX})
    return dict(cursor.fetchall())


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


@dataclass(frozen=True)
class PreparedTransaction:
    """A transaction a BI role prepared (``PREPARE TRANSACTION``): it outlives the session, with its locks."""

    gid: str
    role: str
    database: str
    prepared: Any
    here: bool  # in this database: only here can it be rolled back
    age: float  # seconds since it was prepared
    locks: str | None  # the relation locks it holds in this database, in words

    def __str__(self) -> str:
        held = f", holding {self.locks}" if self.locks else ""
        return (
            f"BI role {self.role} has a prepared transaction {self.gid!r} in database {self.database}, "
            f"{self.age:.0f} s old{held}"
        )


# Prepared transactions of BI roles, in any database of the cluster. BI roles
# are read-only: they have nothing to commit in two phases, and a prepared
# transaction keeps its locks and its snapshot (the vacuum horizon) with no
# session for the watchdog to end. Its locks carry no pid; its own lock on its
# transaction id shares their virtual transaction.
BI_PREPARED_SQL = f"""
SELECT x.gid, x.owner, x.database, x.prepared, x.database = current_database(),
       extract(epoch FROM clock_timestamp() - x.prepared),
       (SELECT string_agg(DISTINCT l.mode || ' on ' || l.relation::regclass::text, ', ')
        FROM pg_locks AS t
        JOIN pg_locks AS l ON l.virtualtransaction = t.virtualtransaction AND l.pid IS NULL
        WHERE t.locktype = 'transactionid' AND t.transactionid = x.transaction AND t.pid IS NULL
          AND l.locktype = 'relation'
          AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()))
FROM pg_prepared_xacts AS x
JOIN pg_roles AS r ON r.rolname = x.owner
WHERE r.oid IN ({BI_MEMBERS_SQL})
ORDER BY x.prepared
"""  # noqa: S608 - a constant


def bi_prepared_transactions(cursor: Any) -> list[PreparedTransaction]:
    """The prepared transactions of BI roles, in every database of the cluster, oldest first."""
    cursor.execute(BI_PREPARED_SQL, [group()])
    return [PreparedTransaction(*row) for row in cursor.fetchall()]
