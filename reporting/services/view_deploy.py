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
   snapshot (made empty, filled by a REFRESH), with its indexes. Nothing readers use is locked meanwhile;
2. in short tries for the locks (a try waits a moment, then lets the readers'
   queue drain, see :func:`reporting.services.refresh.in_short_lock_tries`), the
   current views are dropped and the new ones moved into the schema, and every
   plain view over them is made again (ours from ``views_sql/``, a project's
   own from its definition, options, comments and privileges), with the grants
   and the BI comments. What cannot be carried over (a project's materialized
   view, index or function over the views) stops the deploy before the build.
   Readers wait for this statement or two, then read the new views: PostgreSQL
   looks a name up again after waiting for its lock;
3. the run is recorded like any refresh, with the snapshot the views were built
   in and the files they are stored in: the real-time overlay starts a new
   generation from it, so real-time reads stay exact without a full recompute.

A change of plain views only is made in one transaction too (dropped and made
again, together), which no reader sees half-done.
"""

from __future__ import annotations

__all__ = ["ViewChanges", "view_changes", "views_catch_up", "views_deploy"]

import logging
import re
from dataclasses import dataclass
from typing import Any

from django.db import ProgrammingError, connections, transaction
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

# How long a deploy waits for a running refresh (a scheduled compaction takes
# minutes at 10 M orders) before migrate gives up.
DEPLOY_LOCK_WAIT = 900.0

# Every view (plain or materialized) that depends on one of the given relations,
# however indirectly, with the depth of its longest path to them (made again in
# that order), its qualified name, definition, options (security_barrier,
# security_invoker, check_option), comment, owner, grants, and its columns'
# comments, grants and defaults.
DEPENDANTS_SQL = """
WITH RECURSIVE deps (oid, depth) AS (
    SELECT r.ev_class, 1
    FROM pg_depend AS d JOIN pg_rewrite AS r ON r.oid = d.objid
    WHERE d.classid = 'pg_rewrite'::regclass AND d.refobjid = ANY (%(oids)s::oid[])
      AND r.ev_class <> d.refobjid
    UNION
    SELECT r.ev_class, deps.depth + 1
    FROM deps
    JOIN pg_depend AS d ON d.refobjid = deps.oid AND d.classid = 'pg_rewrite'::regclass
    JOIN pg_rewrite AS r ON r.oid = d.objid
    WHERE r.ev_class <> deps.oid AND deps.depth < 50
)
SELECT c.oid, format('%%I.%%I', n.nspname, c.relname), c.relkind::text, max(deps.depth),
       pg_get_viewdef(c.oid), c.reloptions, obj_description(c.oid, 'pg_class'), pg_get_userbyid(c.relowner),
       (SELECT coalesce(array_agg(format(
                    'GRANT %%s ON %%I.%%I TO %%s', a.privilege_type, n.nspname, c.relname,
                    CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END
                )), '{}')
        FROM aclexplode(c.relacl) AS a WHERE a.grantee <> c.relowner),
       (SELECT coalesce(array_agg(x), '{}') FROM (
            SELECT format('COMMENT ON COLUMN %%I.%%I.%%I IS %%L', n.nspname, c.relname, att.attname,
                          col_description(c.oid, att.attnum)) AS x
            FROM pg_attribute AS att
            WHERE att.attrelid = c.oid AND att.attnum > 0 AND col_description(c.oid, att.attnum) IS NOT NULL
            UNION ALL
            SELECT format('GRANT %%s (%%I) ON %%I.%%I TO %%s', a.privilege_type, att.attname, n.nspname,
                          c.relname, CASE WHEN a.grantee = 0 THEN 'PUBLIC'
                                          ELSE quote_ident(pg_get_userbyid(a.grantee)) END)
            FROM pg_attribute AS att, aclexplode(att.attacl) AS a
            WHERE att.attrelid = c.oid AND att.attnum > 0 AND att.attacl IS NOT NULL
            UNION ALL
            SELECT format('ALTER VIEW %%I.%%I ALTER COLUMN %%I SET DEFAULT %%s', n.nspname, c.relname,
                          att.attname, pg_get_expr(def.adbin, def.adrelid))
            FROM pg_attrdef AS def
            JOIN pg_attribute AS att ON att.attrelid = def.adrelid AND att.attnum = def.adnum
            WHERE def.adrelid = c.oid
        ) AS columns)
FROM deps JOIN pg_class AS c ON c.oid = deps.oid JOIN pg_namespace AS n ON n.oid = c.relnamespace
GROUP BY c.oid, n.nspname
ORDER BY max(deps.depth), c.oid
"""
# What else depends on the views, which no swap can carry over: a function over
# their row type or reading them in a BEGIN ATOMIC body, a statistics object, a
# trigger, an index of the project's on a materialized view.
OTHER_DEPENDANTS_SQL = """
SELECT DISTINCT pg_describe_object(d.classid, d.objid, d.objsubid)
FROM pg_depend AS d
WHERE d.deptype IN ('n', 'a')
  AND (d.refobjid = ANY (%(oids)s::oid[])
       OR d.refobjid IN (SELECT c.reltype FROM pg_class AS c WHERE c.oid = ANY (%(oids)s::oid[])))
  AND d.classid <> 'pg_rewrite'::regclass
  AND NOT (d.classid = 'pg_class'::regclass AND d.objid = ANY (%(oids)s::oid[]))
  AND NOT (d.classid = 'pg_type'::regclass
           AND d.objid IN (SELECT c.reltype FROM pg_class AS c WHERE c.oid = ANY (%(oids)s::oid[])))
  AND NOT (d.classid = 'pg_class'::regclass AND d.objid IN (
      SELECT i.indexrelid FROM pg_index AS i JOIN pg_class AS ic ON ic.oid = i.indexrelid
      WHERE i.indrelid = ANY (%(oids)s::oid[]) AND ic.relname = ANY (%(indexes)s::text[])))
  AND NOT (d.classid = 'pg_type'::regclass AND d.objid IN (
      SELECT t.typarray FROM pg_type AS t JOIN pg_class AS c ON c.reltype = t.oid
      WHERE c.oid = ANY (%(oids)s::oid[])))
ORDER BY 1
"""


class DeployRefusedError(ProgrammingError):
    """Something of the project's depends on the reporting views in a way no swap can carry over."""


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
            cursor.execute("SELECT to_regclass(%s)::oid", [_qualify(name)])
            (oid,) = cursor.fetchone()
            if oid is None:
                continue
            temp = _qualify(f"{name}_temp")
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
    from reporting.selectors.freshness import refresh_lock_holder
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
        holder = refresh_lock_holder(using=using)
        if holder:
            say(f"  Waiting for the refresh lock, held by {holder} (at most {DEPLOY_LOCK_WAIT:.0f} s)")
        run = views_refresh(
            trigger=RefreshTrigger.DEPLOY, force=True, rebuild=True, lock_wait=DEPLOY_LOCK_WAIT, using=using
        )
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


def views_catch_up(*, using: str = "default", write: Any = None) -> bool:
    """Refresh (concurrently) if a refresh succeeded once and the views now need a full recompute.

    What ends a ``migrate`` that installed the declaration again (the change log
    then says every key changed) or let pgviews-redux make a view anew (in a file
    no refresh recorded): without it, real-time reads would recompute every key
    until the next scheduled refresh.

    Returns:
        Whether it refreshed.

    Raises:
        RuntimeError: the refresh did not succeed.
    """
    from reporting.services.refresh import views_refresh

    with connections[using].cursor() as cursor:
        cursor.execute(
            "SELECT generation IS NOT NULL AND needs_full_recompute FROM public.reporting_snapshot_state"
        )
        row = cursor.fetchone()
    if not (row and row[0]):
        return False
    say = write or logger.info
    say("  Real-time reads would recompute every key until a refresh: refreshing the views now")
    run = views_refresh(trigger=RefreshTrigger.DEPLOY, force=True, using=using)
    if run.outcome != RefreshOutcome.OK:
        raise RuntimeError(f"the refresh after the view sync did not succeed ({run.outcome}): {run.error}")
    say(f"  Refreshed in {run.duration.total_seconds() if run.duration else 0:.1f} s")
    return True


# --- the two steps, run by the refresh (reporting.services.refresh) --------------------------------------


def _qualify(db_table: str) -> str:
    """A view's ``db_table``, schema-qualified (an unqualified one is in ``public``) and quoted."""
    schema, _, rel = db_table.rpartition(".")
    return f"{_q(schema or 'public')}.{_q(rel)}"


def _name(view: type[pg.View]) -> str:
    return _qualify(view._meta.db_table)


def _q(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _index_names(views: list[type[pg.View]]) -> list[str]:
    """The indexes pgviews-redux gives the materialized views (the swap carries them)."""
    names = []
    for view in views:
        if issubclass(view, pg.MaterializedView):
            if view._concurrent_index is not None:
                names.append(_concurrent_index_name(view._meta.db_table, view._concurrent_index, None))
            names.extend(index.name for index in view._meta.indexes)
    return names


def _fresh_rows(connection: BaseDatabaseWrapper, sql: str, params: dict[str, Any]) -> list[tuple]:
    """Read the catalog as it is now, on a connection of its own: this transaction's snapshot
    (REPEATABLE READ, taken before the build) would not see what was made since."""
    with connection.wrap_database_errors:
        pg_connection = connection.get_new_connection(connection.get_connection_params())
        try:
            pg_connection.autocommit = True
            return pg_connection.execute(sql, params).fetchall()
        finally:
            pg_connection.close()


def _present_oids(cursor: Any, views: list[type[pg.View]]) -> list[int]:
    cursor.execute(
        "SELECT coalesce(array_agg(to_regclass(n)::oid), '{}') FROM unnest(%s::text[]) AS n "
        "WHERE to_regclass(n) IS NOT NULL",
        [[_name(view) for view in views]],
    )
    return list(cursor.fetchone()[0])


def views_deploy_check(connection: BaseDatabaseWrapper, oids: list[int], ours: list[type[pg.View]]) -> list:
    """What depends on the reporting views (``oids``), read now; refused if no swap can carry it.

    Returns:
        The rows of ``DEPENDANTS_SQL`` for the project's own views over ours.

    Raises:
        DeployRefusedError: a project's materialized view, function, index, trigger or
            statistics object depends on them.
    """
    params = {"oids": oids, "indexes": _index_names(ours)}
    others = [row[0] for row in _fresh_rows(connection, OTHER_DEPENDANTS_SQL, params)]
    dependants = _fresh_rows(connection, DEPENDANTS_SQL, params)
    foreign = [row for row in dependants if row[0] not in oids]
    others += [f"materialized view {row[1]}" for row in foreign if row[2] != "v"]
    if others:
        raise DeployRefusedError(
            f"The reporting views cannot be swapped: {', '.join(others)} depend on them and cannot be "
            "carried over (only views can). Drop them, run migrate, and make them again"
        )
    return foreign


def views_build_beside(
    connection: BaseDatabaseWrapper, cursor: Any, views: list[type[pg.MaterializedView]]
) -> int:
    """Step 1: every materialized view, with data and indexes, in the shadow schema.

    Made empty, then filled by a REFRESH: its rows are then visible to every snapshot,
    as a plain refresh's are (which the readers' snapshot state knows how to treat),
    and not only to snapshots taken after this commit.

    Returns:
        The rows of the new latest-status view.
    """
    if len(SHADOW) > 63:
        raise DeployRefusedError(
            f"REPORTING_SCHEMA {SCHEMA!r} is too long to deploy beside: the schema {SHADOW!r} needs at "
            "most 63 characters (57 for REPORTING_SCHEMA)"
        )
    views_deploy_check(connection, _present_oids(cursor, _our_views()), _our_views())
    # No DROP ... IF EXISTS: a schema of that name is not ours to empty (a failed
    # build rolls its own back), so it stops the deploy with PostgreSQL's message.
    cursor.execute(f"CREATE SCHEMA {_q(SHADOW)}")
    names = [view._meta.db_table for view in views]
    editor = CustomSchemaEditor(connection)
    rows = 0
    for view in views:
        rel = view._meta.db_table.partition(".")[2]
        beside = f"{_q(SHADOW)}.{_q(rel)}"
        cursor.execute(f"CREATE MATERIALIZED VIEW {beside} AS {_shadow_sql(view, names)} WITH NO DATA")
        cursor.execute(f"REFRESH MATERIALIZED VIEW {beside}")
        # The indexes under the names pgviews-redux gives them: they move with the view.
        if view._concurrent_index is not None:
            index = _concurrent_index_name(view._meta.db_table, view._concurrent_index, None)
            cursor.execute(f"CREATE UNIQUE INDEX {_q(index)} ON {beside} ({view._concurrent_index})")
        for meta_index in view._meta.indexes:
            statement = meta_index.create_sql(view, editor)
            statement.parts["table"] = beside
            cursor.execute(str(statement))
        if rel == "order_latest_status":
            cursor.execute(f"SELECT count(*) FROM {beside}")  # noqa: S608 - our names
            rows = cursor.fetchone()[0]
    return rows


def _shadow_sql(view: type[pg.MaterializedView], names: list[str]) -> str:
    """The view's SQL reading the other new views (in the shadow schema), not the current ones."""
    sql = view.get_sql().query.strip().rstrip(";")
    rels = "|".join(re.escape(name.partition(".")[2]) for name in names)
    return re.sub(rf"\b{re.escape(SCHEMA)}\.({rels})\b", rf"{SHADOW}.\1", sql)


# The grants on the app's views to others than their owner (BI roles get theirs
# again from bi_grants_apply; a project may have granted others).
OUR_GRANTS_SQL = """
SELECT format('GRANT %%s ON %%I.%%I TO %%s', a.privilege_type, n.nspname, c.relname,
              CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END)
FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace, aclexplode(c.relacl) AS a
WHERE c.oid = ANY (%(oids)s::oid[]) AND a.grantee <> c.relowner
"""


def views_swap_in(
    connection: BaseDatabaseWrapper, cursor: Any, views: list[type[pg.MaterializedView]]
) -> None:
    """Step 2: the new materialized views (if any) in place of the current ones, and every
    plain view over them made again, with grants and comments. Run in short lock tries.

    What depends on the views is read as it is now, then everything is dropped
    without CASCADE: whatever came since that read stops the swap (it rolls back,
    nothing lost) rather than being dropped with it. (PostgreSQL cannot LOCK a
    materialized view, which would have closed that window.)
    """
    from reporting.services.bi import bi_comments_apply, bi_grants_apply

    ours = _our_views()
    plain = [view for view in ours if not issubclass(view, pg.MaterializedView)]
    oids = _present_oids(cursor, ours)
    foreign = views_deploy_check(connection, oids, ours)
    grants = [row[0] for row in _fresh_rows(connection, OUR_GRANTS_SQL, {"oids": oids})]
    for _, name, *_ in reversed(foreign):
        cursor.execute(f"DROP VIEW {name}")
    for view in reversed(plain):
        cursor.execute(f"DROP VIEW IF EXISTS {_name(view)}")
    for view in reversed(views):
        cursor.execute(f"DROP MATERIALIZED VIEW IF EXISTS {_name(view)}")
    for view in views:
        rel = view._meta.db_table.partition(".")[2]
        cursor.execute(f"ALTER MATERIALIZED VIEW {_q(SHADOW)}.{_q(rel)} SET SCHEMA {_q(SCHEMA)}")
    if views:
        cursor.execute(f"DROP SCHEMA {_q(SHADOW)}")
    for view in plain:
        sql = view.get_sql().query.strip().rstrip(";")
        cursor.execute(f"CREATE VIEW {_name(view)} AS {sql}")
    for _, name, _, _, definition, options, comment, owner, view_grants, column_statements in foreign:
        with_options = f" WITH ({', '.join(options)})" if options else ""
        cursor.execute(f"CREATE VIEW {name}{with_options} AS {definition}")
        if comment is not None:
            cursor.execute(f"COMMENT ON VIEW {name} IS %s", [comment])
        cursor.execute("SELECT current_user = %s", [owner])
        if not cursor.fetchone()[0]:
            cursor.execute(f"ALTER VIEW {name} OWNER TO {_q(owner)}")
        for statement in [*view_grants, *column_statements]:
            cursor.execute(statement)
    for grant in grants:
        cursor.execute(grant)
    bi_grants_apply(using=connection.alias)
    bi_comments_apply(using=connection.alias)
