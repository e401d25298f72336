"""Writes for BI roles: the reporting schema, its grants and comments, the roles.

The watchdog that keeps their sessions in line is :mod:`reporting.services.bi_watchdog`.
"""

from __future__ import annotations

__all__ = [
    "bi_comments_apply",
    "bi_grants_apply",
    "bi_role_create",
    "bi_role_drop",
    "bi_role_rotate_password",
    "bi_role_unlock",
    "bi_roles_repair",
    "reporting_schema_create",
]

import logging
from typing import Any

from django.apps import apps
from django.db import connections, transaction
from django_pgviews import view as pg
from psycopg import sql

from reporting import conf, wording
from reporting.bi import (
    BiRole,
    ForeignSchemaObjectsError,
    RoleSettings,
    UnknownRoleError,
    declared_views,
    execute,
    existing_views,
    group,
    home_comment,
    members,
    password_verifier,
    recorded_elsewhere,
    recorded_settings,
    role_exists,
    validated_password,
    validated_role_name,
    validated_settings,
)
from reporting.declaration import source
from reporting.exceptions import ReportingError
from reporting.matviews import LatestRowColumns
from reporting.models import BiRoleLimits, BiRoleLockout, BiTermination
from reporting.selectors.bi import bi_role, schema_foreign_objects
from reporting.sql_files import SCHEMA

logger = logging.getLogger(__name__)


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
        execute(cursor, sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(SCHEMA)))


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
        if not role_exists(cursor, group()):
            if not create_group:
                return False
            execute(cursor, sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(group())))
        group_id, schema = sql.Identifier(group()), sql.Identifier(SCHEMA)
        cursor.execute("SELECT current_database()")
        database = sql.Identifier(cursor.fetchone()[0])
        execute(cursor, sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(database, group_id))
        execute(cursor, sql.SQL("REVOKE ALL ON SCHEMA {} FROM PUBLIC").format(schema))
        execute(cursor, sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(schema, group_id))
        for view in existing_views(cursor, declared_views()):
            execute(
                cursor, sql.SQL("GRANT SELECT ON {} TO {}").format(sql.Identifier(SCHEMA, view), group_id)
            )
        # Earlier versions made every table created in the schema readable by
        # default; take that back, so a foreign table never is.
        execute(
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
        existing = set(existing_views(cursor, declared_views()))
        for model in apps.get_models():
            schema, _, name = model._meta.db_table.rpartition(".")
            if not (isinstance(model, type) and issubclass(model, pg.View)) or schema != SCHEMA:
                continue
            if name not in existing:
                continue
            kind = sql.SQL("MATERIALIZED VIEW" if issubclass(model, pg.MaterializedView) else "VIEW")
            target = sql.Identifier(SCHEMA, name)
            if model._meta.db_table_comment:
                execute(
                    cursor,
                    sql.SQL("COMMENT ON {} {} IS {}").format(
                        kind, target, sql.Literal(wording.comment(model._meta.db_table_comment))
                    ),
                )
                written += 1
            comments = {
                field.column or field.name: wording.comment(field.db_comment or "")
                for field in model._meta.concrete_fields
            }
            if issubclass(model, LatestRowColumns):
                # The columns REPORTING_SOURCE declares to show follow the model's own.
                comments.update(
                    # The column's own name stays as declared, whatever it is.
                    (
                        column,
                        f"The {column} of {wording.comment('the order')}'s latest status row "
                        "(REPORTING_SOURCE['columns']).",
                    )
                    for column in source().columns
                )
            for column, comment in comments.items():
                if comment:
                    execute(
                        cursor,
                        sql.SQL("COMMENT ON COLUMN {} IS {}").format(
                            sql.Identifier(SCHEMA, name, column), sql.Literal(comment)
                        ),
                    )
                    written += 1
    return written


# --- Roles -------------------------------------------------------------------------------------------------


def _apply_role_settings(cursor: Any, name: str, role_settings: RoleSettings, using: str) -> None:
    """Make the role's limits what ``role_settings`` says, and record them."""
    role = sql.Identifier(name)
    execute(
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
            execute(cursor, sql.SQL("ALTER ROLE {} RESET ALL").format(role))
        else:
            execute(
                cursor,
                sql.SQL("ALTER ROLE {} IN DATABASE {} RESET ALL").format(role, sql.Identifier(database)),
            )
    for parameter, value in role_settings.parameters().items():
        execute(
            cursor,
            sql.SQL("ALTER ROLE {} SET {} = {}").format(role, sql.Identifier(parameter), sql.Literal(value)),
        )
    cursor.execute("SELECT current_database()")
    execute(
        cursor,
        sql.SQL("COMMENT ON ROLE {} IS {}").format(role, sql.Literal(home_comment(cursor.fetchone()[0]))),
    )
    if BiRoleLockout.objects.using(using).filter(name=name).exists():
        # Locked out by the watchdog: a repair restores its limits, not its login.
        execute(cursor, sql.SQL("ALTER ROLE {} NOLOGIN").format(role))
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
    password = validated_password(password)
    role_settings = validated_settings(role_settings or RoleSettings())
    bi_grants_apply(using=using, create_group=True)
    connection = connections[using]
    with transaction.atomic(using=using), connection.cursor() as cursor:
        if role_exists(cursor, name):
            raise ReportingError(f"a role named {name!r} exists already")
        execute(
            cursor,
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {} IN ROLE {}").format(
                sql.Identifier(name),
                sql.Literal(password_verifier(cursor, name, password)),
                sql.Identifier(group()),
            ),
        )
        _apply_role_settings(cursor, name, role_settings, using)
    logger.info("Created BI role %s", name)
    return bi_role(name, using)


def bi_role_rotate_password(*, name: str, password: str, using: str = "default") -> None:
    """Give a BI role a new password. Sessions already open stay open.

    Raises:
        InvalidParameterError: a bad name or password.
        UnknownRoleError: no BI role has that name.
    """
    name = validated_role_name(name)
    password = validated_password(password)
    with transaction.atomic(using=using), connections[using].cursor() as cursor:
        if name not in members(cursor):
            raise UnknownRoleError(name)
        execute(
            cursor,
            sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                sql.Identifier(name), sql.Literal(password_verifier(cursor, name, password))
            ),
        )


def bi_role_drop(*, name: str, using: str = "default") -> None:
    """Drop a BI login role (only members of the BI group can be dropped here).

    Raises:
        UnknownRoleError: no BI role has that name.
    """
    name = validated_role_name(name)
    with transaction.atomic(using=using), connections[using].cursor() as cursor:
        if name not in members(cursor):
            raise UnknownRoleError(name)
        execute(cursor, sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))
        BiRoleLimits.objects.using(using).filter(name=name).delete()
        BiRoleLockout.objects.using(using).filter(name=name).delete()
        BiTermination.objects.using(using).filter(name=name).delete()


def bi_role_unlock(*, name: str, using: str = "default") -> bool:
    """Let a BI role that the watchdog locked out log in again, and forget its terminations.

    Returns:
        Whether it was locked out (``False``: nothing to undo; it is made LOGIN all the same).

    Raises:
        UnknownRoleError: no BI role has that name.
    """
    name = validated_role_name(name)
    with transaction.atomic(using=using), connections[using].cursor() as cursor:
        if name not in members(cursor):
            raise UnknownRoleError(name)
        execute(cursor, sql.SQL("ALTER ROLE {} LOGIN").format(sql.Identifier(name)))
        locked, _ = BiRoleLockout.objects.using(using).filter(name=name).delete()
        BiTermination.objects.using(using).filter(name=name).delete()
    logger.info("BI role %s unlocked%s", name, "" if locked else " (it was not locked out)")
    return bool(locked)


def bi_roles_repair(*, using: str = "default") -> list[str]:
    """Re-apply the grants, and every BI role's recorded limits (its settings and connection limit).

    A role with no recorded limits (made by hand, or by an earlier version) gets
    the defaults, which are then recorded. A role whose limits another database
    of the cluster records (the one that made it) is left to that database.

    Returns:
        The names of the roles whose limits were applied.
    """
    bi_grants_apply(using=using, create_group=True)
    with transaction.atomic(using=using), connections[using].cursor() as cursor:
        elsewhere = recorded_elsewhere(cursor, members(cursor), using)
        names = [name for name in members(cursor) if name not in elsewhere]
        for name in names:
            _apply_role_settings(cursor, name, recorded_settings(name, using) or RoleSettings(), using)
    return names
