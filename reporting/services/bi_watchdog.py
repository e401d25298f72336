"""The BI watchdog: ends BI sessions that hold what the product needs, locks out roles that come back.

Every ``REPORTING_BI_WATCHDOG_INTERVAL`` seconds the scheduler runs
:func:`bi_watchdog_run`; the roles themselves are made by :mod:`reporting.services.bi`.
"""

from __future__ import annotations

__all__ = ["bi_watchdog_run"]

import datetime as dt
import logging
from typing import Any

from django.db import DatabaseError, connections
from django.utils import timezone
from psycopg import sql

from reporting import conf
from reporting.bi import (
    BI_MEMBERS_SQL,
    RoleSettings,
    WatchdogAction,
    WatchdogBlindError,
    bi_prepared_transactions,
    duration_ms,
    execute,
    group,
    recorded_elsewhere,
)
from reporting.models import BiRoleLimits, BiRoleLockout, BiTermination

logger = logging.getLogger(__name__)


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

    For every session of a BI role whose limits this database records (or that
    no database records), in any database of the cluster:

    * a lock that no read takes (any mode but ACCESS SHARE on a relation of this
      database that is not its own temporary one): the session is ended;
    * a transaction older than the role's transaction timeout: the session is ended;
    * a statement running longer than the role's statement timeout: it is cancelled,
      and if it still runs ``grace`` seconds later (a PL/pgSQL block can catch a
      cancel), the session is ended;
    * idle in a transaction longer than the role's idle timeout (also in an
      aborted one): the session is ended, as PostgreSQL itself would.

    Every prepared transaction of a BI role in this database (``PREPARE
    TRANSACTION``, where ``max_prepared_transactions`` > 0) is rolled back: it
    keeps its locks and its snapshot with no session to end, and a read-only
    role has nothing to commit in two phases.

    A role whose sessions were ended (or prepared transactions rolled back)
    ``REPORTING_BI_LOCKOUT_TERMINATIONS`` times within ``REPORTING_BI_LOCKOUT_WINDOW``
    seconds is locked out: made ``NOLOGIN`` (recorded in ``BiRoleLockout``;
    ``bi_role unlock`` undoes it), and its remaining sessions are ended. A
    reconnect loop would otherwise hold what it is ended for most of the time.

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
        # Another database's roles: that database's watchdog holds them to the limits it records.
        elsewhere = recorded_elsewhere(cursor, sorted({row[1] for row in rows}), using)
        rows = [row for row in rows if row[1] not in elsewhere]
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
        actions += _prepared_rollback(cursor)
    for act in actions:
        _log(act)
    locked = _lockout(actions, using)
    for act in locked:
        _log(act)
    return actions + locked


def _log(act: WatchdogAction) -> None:
    if act.action == "rolled back":
        logger.warning("BI watchdog rolled back %s of role %s: %s", act.query, act.role, act.reason)
    elif act.action == "locked":
        logger.warning("BI watchdog locked out role %s (NOLOGIN): %s", act.role, act.reason)
    else:
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


def _prepared_rollback(cursor: Any) -> list[WatchdogAction]:
    """Roll back the prepared transactions of BI roles in this database (wherever their limits are recorded).

    Only a session of the same database can finish a prepared transaction: one in
    another database is left to that database's watchdog (``bi_role check`` there,
    and here, reports it).
    """
    actions = []
    for prepared in bi_prepared_transactions(cursor):
        if not prepared.here:
            continue
        held = f", holding {prepared.locks}" if prepared.locks else ""
        reason = (
            f"it was prepared {prepared.age:.1f} s ago{held}; a prepared transaction keeps its locks "
            f"with no session to end, and a BI role has nothing to commit in two phases"
        )
        try:
            _rollback_prepared_as(cursor, prepared.gid, prepared.role)
        except DatabaseError as exc:
            # Finished meanwhile (committed or rolled back by its owner), or not ours to finish.
            logger.warning(
                "BI watchdog could not roll back the prepared transaction %r of role %s: %s",
                prepared.gid,
                prepared.role,
                str(exc).splitlines()[0],
            )
            continue
        actions.append(
            WatchdogAction("rolled back", 0, prepared.role, reason, f"prepared transaction {prepared.gid!r}")
        )
    return actions


def _rollback_prepared_as(cursor: Any, gid: str, role_name: str) -> None:
    """``ROLLBACK PREPARED gid``, which only a superuser or the role that prepared it may run.

    A database user that is not a superuser (but has CREATEROLE, as ``bi_role``
    needs) becomes the BI role for that one statement: it grants itself the
    role if it must, and takes the grant back afterwards.
    """
    statement = sql.SQL("ROLLBACK PREPARED {}").format(sql.Literal(gid))
    cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
    if cursor.fetchone()[0]:
        execute(cursor, statement)
        return
    role = sql.Identifier(role_name)
    cursor.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_auth_members WHERE roleid = %s::regrole "
        "AND member = current_user::regrole), current_setting('server_version_num')::int",
        [role_name],
    )
    member, version = cursor.fetchone()
    granted = None
    try:
        execute(cursor, sql.SQL("SET ROLE {}").format(role))
    except DatabaseError:
        # PostgreSQL 16 gives the role that made another one ADMIN OPTION on it, without SET.
        option = sql.SQL(" WITH SET TRUE, INHERIT FALSE" if version >= 160000 else "")
        execute(cursor, sql.SQL("GRANT {} TO CURRENT_USER{}").format(role, option))
        granted = (
            sql.SQL("REVOKE SET OPTION FOR {} FROM CURRENT_USER")
            if member
            else sql.SQL("REVOKE {} FROM CURRENT_USER")
        ).format(role)
        execute(cursor, sql.SQL("SET ROLE {}").format(role))
    try:
        execute(cursor, statement)
    finally:
        cursor.execute("RESET ROLE")
        if granted is not None:
            execute(cursor, granted)


def _lockout(actions: list[WatchdogAction], using: str) -> list[WatchdogAction]:
    """Record this round's terminations, and lock out the roles with too many in the window."""
    ended = [act for act in actions if act.action in ("terminated", "rolled back")]
    threshold, window = conf.bi_lockout_terminations(), conf.bi_lockout_window()
    if not ended or not threshold:
        return []
    now = timezone.now()
    since = now - dt.timedelta(seconds=window)
    terminations = BiTermination.objects.using(using)
    terminations.filter(at__lt=since).delete()
    terminations.bulk_create([BiTermination(name=act.role, reason=act.reason) for act in ended])
    locked: list[WatchdogAction] = []
    with connections[using].cursor() as cursor:
        elsewhere = recorded_elsewhere(cursor, sorted({act.role for act in ended}), using)
        for name in sorted({act.role for act in ended} - set(elsewhere)):
            count = terminations.filter(name=name, at__gte=since).count()
            if count < threshold or BiRoleLockout.objects.using(using).filter(name=name).exists():
                continue
            try:
                execute(cursor, sql.SQL("ALTER ROLE {} NOLOGIN").format(sql.Identifier(name)))
            except DatabaseError as exc:
                logger.error("BI watchdog could not lock out role %s: %s", name, str(exc).splitlines()[0])
                continue
            last = next(act.reason for act in reversed(ended) if act.role == name)
            BiRoleLockout.objects.using(using).create(
                name=name, terminations=count, window=window, reason=last
            )
            # Sessions it still has (the next attempt of a reconnect loop) end too.
            cursor.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE usename = %s AND pid <> pg_backend_pid()",
                [name],
            )
            more = cursor.fetchone()[0]
            reason = (
                f"{count} of its sessions or prepared transactions were ended within {window:g} s "
                f"(REPORTING_BI_LOCKOUT_TERMINATIONS={threshold}); {more} more session(s) ended; "
                f"the last for: {last}. 'manage.py bi_role unlock {name}' lets it log in again"
            )
            locked.append(WatchdogAction("locked", 0, name, reason, ""))
    return locked
