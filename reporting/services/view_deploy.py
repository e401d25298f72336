"""Writes: deploying changed view SQL without failing a reader.

pgviews-redux, on its own, rebuilds a materialized view whose SQL changed with
``DROP MATERIALIZED VIEW ... CASCADE`` and a ``CREATE ... WITH DATA`` that holds
an exclusive lock for as long as the view takes to compute: readers wait minutes
at 10 M keys, readers of the dependent views fail ("relation does not exist"),
and the rebuilt views sit in files no refresh recorded, so real-time reads
recompute every key until the next refresh.

Here, when ``migrate`` ends (before pgviews-redux syncs, which then finds every
view as its file says and does nothing), a change is deployed as a refresh of
its own (trigger ``deploy``), in one REPEATABLE READ transaction:

1. every materialized view is built beside the current ones, in the schema
   ``<REPORTING_SCHEMA>__next``, from the current SQL and in the transaction's
   snapshot, with its indexes. Nothing readers use is locked meanwhile;
2. in short tries for the locks (a try waits a moment, then lets the readers'
   queue drain, see :func:`reporting.services.refresh.in_short_lock_tries`), the
   current views are dropped and the new ones moved into the schema, and every
   plain view over them is made again (ours from ``views_sql/``, a project's
   own from its definition, with its comment and privileges), with the grants
   and the BI comments. Readers wait for this statement or two, then read the new
   views: PostgreSQL looks a name up again after waiting for its lock;
3. the run is recorded like any refresh, with the snapshot the views were built
   in and the files they are stored in: the real-time overlay starts a new
   generation from it, so real-time reads stay exact without a full recompute.

A change of plain views only is made in one transaction too (dropped and made
again, together), which no reader sees half-done.
"""

from __future__ import annotations

__all__ = ["ViewChanges", "view_changes", "views_deploy"]

import logging
import re
from dataclasses import dataclass
from typing import Any

from django.db import connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django_pgviews import view as pg
from django_pgviews.management.operations.create_materialized import (
    CustomSchemaEditor,
    _concurrent_index_name,
)

from reporting.choices import RefreshOutcome, RefreshTrigger
from reporting.models import RefreshRun
from reporting.sql_files import SCHEMA

logger = logging.getLogger(__name__)

SHADOW = f"{SCHEMA}__next"

# Every view (plain or materialized) that depends on one of the given relations,
# however indirectly, with the depth of its longest path to them (made again in
# that order), its definition, comment, privileges and owner.
DEPENDANTS_SQL = """
WITH RECURSIVE deps (oid, depth) AS (
    SELECT r.ev_class, 1
    FROM pg_depend AS d JOIN pg_rewrite AS r ON r.oid = d.objid
    WHERE d.classid = 'pg_rewrite'::regclass AND d.refobjid = ANY (%s::regclass[])
      AND r.ev_class <> d.refobjid
    UNION
    SELECT r.ev_class, deps.depth + 1
    FROM deps
    JOIN pg_depend AS d ON d.refobjid = deps.oid AND d.classid = 'pg_rewrite'::regclass
    JOIN pg_rewrite AS r ON r.oid = d.objid
    WHERE r.ev_class <> deps.oid AND deps.depth < 50
)
SELECT c.oid::regclass::text, c.relkind::text, max(deps.depth), pg_get_viewdef(c.oid),
       obj_description(c.oid, 'pg_class'), pg_get_userbyid(c.relowner),
       (SELECT coalesce(array_agg(format('GRANT %%s ON %%s TO %%s', a.privilege_type, c.oid::regclass,
                                         CASE WHEN a.grantee = 0 THEN 'PUBLIC'
                                              ELSE quote_ident(pg_get_userbyid(a.grantee)) END)), '{}')
        FROM aclexplode(c.relacl) AS a WHERE a.grantee <> c.relowner)
FROM deps JOIN pg_class AS c ON c.oid = deps.oid
GROUP BY c.oid
ORDER BY max(deps.depth), c.oid
"""


@dataclass(frozen=True)
class ViewChanges:
    """The reporting views whose SQL differs from what is in the database."""

    materialized: list[str]
    plain: list[str]

    def __bool__(self) -> bool:
        return bool(self.materialized or self.plain)


def _our_views() -> list[type[pg.View]]:
    from django.apps import apps
    from django_pgviews.dependencies import reorder_by_dependencies

    views = [
        m
        for m in apps.get_models()
        if isinstance(m, type) and issubclass(m, pg.View) and m._meta.app_label == "reporting"
    ]
    return list(reorder_by_dependencies(views))


def _quoted(connection: BaseDatabaseWrapper, name: str) -> str:
    return ".".join(connection.ops.quote_name(part) for part in name.split("."))


def view_changes(*, using: str = "default") -> ViewChanges:
    """Which reporting views would pgviews-redux rebuild: compared as it compares them.

    Each view's file is made into a view beside it (``<name>_temp``, with no data)
    and the two definitions as PostgreSQL prints them are compared; all of it is
    rolled back. A view that does not exist yet is not a change (the sync makes it).
    """
    connection = connections[using]
    materialized: list[str] = []
    plain: list[str] = []
    with transaction.atomic(using=using), connection.cursor() as cursor:
        for view in _our_views():
            name = view._meta.db_table
            is_mat = issubclass(view, pg.MaterializedView)
            cursor.execute("SELECT to_regclass(%s)::oid", [_quoted(connection, name)])
            (oid,) = cursor.fetchone()
            if oid is None:
                continue
            temp = _quoted(connection, f"{name}_temp")
            kind = "MATERIALIZED VIEW" if is_mat else "VIEW"
            cursor.execute(f"DROP {kind} IF EXISTS {temp}")
            try:
                with transaction.atomic(using=using):
                    sql = view.get_sql().query.strip().rstrip(";")
                    cursor.execute(f"CREATE {kind} {temp} AS {sql}{' WITH NO DATA' if is_mat else ''}")
                    cursor.execute(
                        "SELECT pg_get_viewdef(%s::oid) = pg_get_viewdef(to_regclass(%s))", [oid, temp]
                    )
                    same = cursor.fetchone()[0]
                    cursor.execute(f"DROP {kind} {temp}")
            except Exception:
                same = False
            if not same:
                (materialized if is_mat else plain).append(name)
        transaction.set_rollback(True, using=using)
    return ViewChanges(materialized, plain)


def last_deploy_duration(*, using: str = "default") -> float | None:
    """Seconds the latest successful deploy rebuild took, if there was one."""
    run = (
        RefreshRun.objects.using(using)
        .filter(trigger=RefreshTrigger.DEPLOY, outcome=RefreshOutcome.OK)
        .order_by("-id")
        .first()
    )
    return run.duration.total_seconds() if run and run.duration else None


def views_deploy(*, using: str = "default", write: Any = None) -> ViewChanges:
    """Deploy the views whose SQL changed, beside and swapped in (see the module).

    Args:
        using: the database alias.
        write: a function that takes one line for the person running ``migrate``.

    Returns:
        What changed (nothing: nothing was done).

    Raises:
        RuntimeError: the rebuild failed; the previous views are in place, intact.
    """
    from reporting.services.refresh import views_refresh

    changes = view_changes(using=using)
    if not changes:
        return changes
    say = write or logger.info
    names = ", ".join(changes.materialized + changes.plain)
    if changes.materialized:
        last = last_deploy_duration(using=using)
        took = f"; the last rebuild took {last:.1f} s" if last is not None else ""
        say(
            f"  Reporting views changed ({names}): building every materialized view beside the current "
            f"ones, then swapping them in{took}"
        )
        run = views_refresh(trigger=RefreshTrigger.DEPLOY, force=True, rebuild=True, using=using)
        if run.outcome != RefreshOutcome.OK:
            raise RuntimeError(f"the reporting views were not rebuilt ({run.outcome}): {run.error}")
        seconds = run.duration.total_seconds() if run.duration else 0.0
        say(f"  Rebuilt and swapped in, in {seconds:.1f} s")
    else:
        say(f"  Reporting views changed ({names}): made again in one transaction")
        from reporting.services.refresh import in_short_lock_tries

        connection = connections[using]
        with transaction.atomic(using=using), connection.cursor() as cursor:
            in_short_lock_tries(connection, lambda: views_swap_in(connection, cursor, []))
    return changes


# --- the two steps, run by the refresh (reporting.services.refresh) --------------------------------------


def _shadow_sql(view: type[pg.MaterializedView], names: list[str]) -> str:
    """The view's SQL reading the other new views (in the shadow schema), not the current ones."""
    sql = view.get_sql().query.strip().rstrip(";")
    rels = "|".join(re.escape(name.partition(".")[2]) for name in names)
    return re.sub(rf"\b{re.escape(SCHEMA)}\.({rels})\b", rf"{SHADOW}.\1", sql)


def views_build_beside(
    connection: BaseDatabaseWrapper, cursor: Any, views: list[type[pg.MaterializedView]]
) -> None:
    """Step 1: every materialized view, with data and indexes, in the shadow schema."""
    names = [view._meta.db_table for view in views]
    cursor.execute(f"DROP SCHEMA IF EXISTS {connection.ops.quote_name(SHADOW)} CASCADE")
    cursor.execute(f"CREATE SCHEMA {connection.ops.quote_name(SHADOW)}")
    editor = CustomSchemaEditor(connection)
    for view in views:
        rel = view._meta.db_table.partition(".")[2]
        beside = f"{connection.ops.quote_name(SHADOW)}.{connection.ops.quote_name(rel)}"
        cursor.execute(f"CREATE MATERIALIZED VIEW {beside} AS {_shadow_sql(view, names)} WITH DATA")
        # The indexes under the names pgviews-redux gives them: they move with the view.
        if view._concurrent_index is not None:
            index = _concurrent_index_name(view._meta.db_table, view._concurrent_index, None)
            cursor.execute(f"CREATE UNIQUE INDEX {index} ON {beside} ({view._concurrent_index})")
        for meta_index in view._meta.indexes:
            statement = meta_index.create_sql(view, editor)
            statement.parts["table"] = beside
            cursor.execute(str(statement))


def views_swap_in(
    connection: BaseDatabaseWrapper, cursor: Any, views: list[type[pg.MaterializedView]]
) -> None:
    """Step 2: the new materialized views (if any) in place of the current ones, and every
    plain view over them made again, with grants and comments. Run in short lock tries."""
    from reporting.services.bi import bi_comments_apply, bi_grants_apply

    ours = _our_views()
    our_names = {view._meta.db_table for view in ours}
    plain = [view for view in ours if not issubclass(view, pg.MaterializedView)]
    cursor.execute(
        "SELECT coalesce(array_agg(n), '{}') FROM unnest(%s::text[]) AS n WHERE to_regclass(n) IS NOT NULL",
        [[_quoted(connection, name) for name in our_names]],
    )
    present = cursor.fetchone()[0]
    cursor.execute(DEPENDANTS_SQL, [present])
    foreign = [row for row in cursor.fetchall() if row[0] not in our_names]
    for name, kind, *_ in foreign:
        if kind != "v":
            raise RuntimeError(
                f"{name} is a materialized view over the reporting views: drop it, or make it a plain "
                "view, before the reporting views can be swapped"
            )
    for view in reversed(plain):
        cursor.execute(f"DROP VIEW IF EXISTS {_quoted(connection, view._meta.db_table)} CASCADE")
    for view in views:
        rel = view._meta.db_table.partition(".")[2]
        cursor.execute(f"DROP MATERIALIZED VIEW IF EXISTS {_quoted(connection, view._meta.db_table)} CASCADE")
        cursor.execute(
            f"ALTER MATERIALIZED VIEW {connection.ops.quote_name(SHADOW)}.{connection.ops.quote_name(rel)} "
            f"SET SCHEMA {connection.ops.quote_name(SCHEMA)}"
        )
    if views:
        cursor.execute(f"DROP SCHEMA {connection.ops.quote_name(SHADOW)}")
    for view in plain:
        sql = view.get_sql().query.strip().rstrip(";")
        cursor.execute(f"CREATE VIEW {_quoted(connection, view._meta.db_table)} AS {sql}")
    for name, _, _, definition, comment, owner, grants in foreign:
        cursor.execute(f"CREATE VIEW {name} AS {definition}")
        if comment is not None:
            cursor.execute(f"COMMENT ON VIEW {name} IS %s", [comment])
        cursor.execute("SELECT current_user = %s", [owner])
        if not cursor.fetchone()[0]:
            cursor.execute(f"ALTER VIEW {name} OWNER TO {connection.ops.quote_name(owner)}")
        for grant in grants:
            cursor.execute(grant)
    bi_grants_apply(using=connection.alias)
    bi_comments_apply(using=connection.alias)
