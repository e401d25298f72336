"""BI roles, tested by connecting as them for real."""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import logging
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from io import StringIO
from pathlib import Path

import psycopg
import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from psycopg import errors

from examples.shop import services as shop_services
from reporting import bi, selectors, services
from reporting.choices import RefreshOutcome
from reporting.exceptions import InvalidParameterError
from reporting.matviews import OrderLatestStatusView
from reporting.models import BiRoleLimits, BiRoleLockout
from reporting.services.bi_watchdog import _rollback_prepared_as as rollback_prepared_as
from reporting.sql_files import view_sql
from tests.factories import EPOCH
from tests.helpers import extra_connection, raw_connect, subprocess_env, sync_views, wait_for_sql

pytestmark = pytest.mark.django_db(transaction=True)

MANAGE = str(Path(__file__).resolve().parent.parent / "manage.py")

PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True)
def bi_group(settings):
    """Each test starts from a cluster without its BI group, and leaves none behind.

    Roles are cluster-wide: a group left by one test (with its grants) would hide
    a missing grant in the next. Each test gets a group of its own name.
    """
    name = f"rr_test_{uuid.uuid4().hex[:10]}"
    settings.REPORTING_BI_GROUP = name
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [name])
        assert cursor.fetchone() is None
    yield name
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT r.rolname FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member "
            "JOIN pg_roles g ON g.oid = m.roleid WHERE g.rolname = %s",
            [name],
        )
        for (member,) in cursor.fetchall():
            drop_login_role(cursor, member)
        cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [name])
        if cursor.fetchone():
            drop_owned(cursor, name)
            cursor.execute(f'DROP ROLE "{name}"')


def drop_owned(cursor, name: str) -> None:
    """DROP OWNED BY, also as a non-superuser owner: it needs the role's privileges, which
    PostgreSQL 15 does not give the role with CREATEROLE that made it (CI runs as one)."""
    cursor.execute(f'GRANT "{name}" TO CURRENT_USER')
    cursor.execute(f'DROP OWNED BY "{name}"')


def drop_login_role(cursor, name: str) -> None:
    cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", [name])
    # A prepared transaction a test left behind would keep its locks, and the test database.
    cursor.execute(
        "SELECT gid FROM pg_prepared_xacts WHERE owner = %s AND database = current_database()", [name]
    )
    for (gid,) in cursor.fetchall():
        rollback_prepared_as(cursor, gid, name)
    cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [name])
    if cursor.fetchone():
        drop_owned(cursor, name)
    cursor.execute(f'DROP ROLE IF EXISTS "{name}"')


def connect_as(name: str, password: str = PASSWORD, *, autocommit: bool = False) -> psycopg.Connection:
    return raw_connect(autocommit=autocommit, user=name, password=password)


@pytest.fixture
def role_name():
    name = f"bi_test_{uuid.uuid4().hex[:10]}"
    yield name
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [name])
        if cursor.fetchone():
            drop_login_role(cursor, name)


@pytest.fixture
def data():
    shop_services.orders_seed(orders=50, seed=1, until=EPOCH)
    services.views_refresh(force=True)


def reporting_views() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'reporting' AND c.relkind IN ('v', 'm') ORDER BY 1"
        )
        return [row[0] for row in cursor.fetchall()]


def test_a_bi_role_reads_every_reporting_view_and_nothing_else(role_name, data):
    services.bi_role_create(name=role_name, password=PASSWORD)
    views = reporting_views()
    assert {"order_latest_status", "order_latest_status_live", "freshness"} <= set(views)
    with connect_as(role_name, autocommit=True) as conn:
        for view in views:
            conn.execute(f"SELECT * FROM reporting.{view} LIMIT 1").fetchall()  # noqa: S608 - catalog names
        count = conn.execute("SELECT count(*) FROM order_latest_status_live").fetchone()
        assert count == (50,), "search_path is the reporting schema"
        for table in (
            "public.reporting_order",
            "public.reporting_orderstatus",
            "public.reporting_example_order",
            "public.reporting_example_orderstatus",
            "public.reporting_refreshrun",
            "public.reporting_orderchange",
            "public.auth_user",
        ):
            with pytest.raises(errors.InsufficientPrivilege):
                conn.execute(f"SELECT 1 FROM {table} LIMIT 1")  # noqa: S608 - constants
        # Read-only by default...
        with pytest.raises(errors.ReadOnlySqlTransaction):
            conn.execute("CREATE TABLE public.sneaky (id int)")
        # ...and by privileges, even after switching the default off.
        conn.execute("SET default_transaction_read_only = off")
        for statement in (
            "INSERT INTO public.reporting_example_orderstatus (order_id, created, status) VALUES "
            "(1, now(), 'x')",
            "UPDATE public.reporting_example_orderstatus SET status = 'cancelled'",
            "DELETE FROM public.reporting_example_order",
            "DELETE FROM public.reporting_order",
            "INSERT INTO reporting.order_latest_status VALUES (1, 1, 'pending', now())",
            "DELETE FROM reporting.order_latest_status_live",
            "CREATE TABLE public.sneaky (id int)",
            "CREATE TABLE reporting.sneaky (id int)",
            "REFRESH MATERIALIZED VIEW reporting.order_latest_status",
        ):
            with pytest.raises((errors.InsufficientPrivilege, errors.ObjectNotInPrerequisiteState)):
                conn.execute(statement)
    assert selectors.bi_grants_check() == []


def test_a_bi_role_reads_the_live_view_when_the_change_log_cannot_say_what_changed(role_name, data):
    """After a TRUNCATE the view reads the history itself, which BI roles may not read directly."""
    services.bi_role_create(name=role_name, password=PASSWORD)
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE reporting_example_orderstatus")
    shop_services.order_status_record(order_id=7, status="cancelled")
    query = (
        "SELECT order_id, status FROM order_latest_status_live "
        "WHERE status = 'cancelled' ORDER BY status_created DESC, order_id DESC LIMIT 10"
    )
    with connect_as(role_name, autocommit=True) as conn:
        assert conn.execute(query).fetchall() == [(7, "cancelled")]
        # What makes it possible is no door into the history for BI roles.
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute("SELECT 1 FROM public.reporting_orderstatus LIMIT 1")


def test_passwords_are_checked_and_can_be_rotated(role_name):
    services.bi_role_create(name=role_name, password=PASSWORD)
    with connect_as(role_name) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (role_name,)
    try:
        with connect_as(role_name, password="wrong password!!"):
            trusted = True
    except psycopg.OperationalError as exc:
        trusted = False
        assert "password authentication failed" in str(exc)
    if trusted and connection.settings_dict["ENGINE"] == "reporting.embedded_db":
        pytest.fail("the embedded server must check BI roles' passwords")
    services.bi_role_rotate_password(name=role_name, password="another long password")
    with connect_as(role_name, password="another long password") as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_a_query_longer_than_the_statement_timeout_is_cancelled(role_name):
    services.bi_role_create(
        name=role_name, password=PASSWORD, role_settings=bi.RoleSettings(statement_timeout="300ms")
    )
    with connect_as(role_name) as conn, pytest.raises(errors.QueryCanceled, match="statement timeout"):
        conn.execute("SELECT pg_sleep(3)")


def test_the_connection_limit_holds(role_name):
    services.bi_role_create(
        name=role_name, password=PASSWORD, role_settings=bi.RoleSettings(connection_limit=2)
    )
    with contextlib.ExitStack() as stack:
        for _ in range(2):
            stack.enter_context(connect_as(role_name))
        with pytest.raises(psycopg.OperationalError, match="too many connections for role"):
            connect_as(role_name)


def test_the_role_still_reads_a_view_rebuilt_by_a_new_sql_version(role_name, data, monkeypatch):
    services.bi_role_create(name=role_name, password=PASSWORD)
    original_oid = _oid()
    monkeypatch.setattr(
        OrderLatestStatusView,
        "sql",
        view_sql("order_latest_status").replace("AS s\n", "AS s WHERE s.id > 0\n"),
    )
    try:
        sync_views()
        assert _oid() != original_oid, "the view was not rebuilt"
        with connect_as(role_name) as conn:
            assert conn.execute("SELECT count(*) FROM reporting.order_latest_status").fetchone() == (50,)
            conn.execute("SELECT count(*) FROM reporting.order_latest_status_live").fetchone()
        assert selectors.bi_grants_check() == []
    finally:
        monkeypatch.undo()
        sync_views()


def _oid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 'reporting.order_latest_status'::regclass::oid")
        return cursor.fetchone()[0]


@pytest.mark.parametrize(
    "name",
    [
        'x"; DROP TABLE reporting_order; --',
        "Robert'); DROP TABLE y;--",
        "UPPER",
        "",
        "a" * 64,
    ],
)
def test_hostile_role_names_are_refused(name):
    with pytest.raises(InvalidParameterError, match="role name"):
        services.bi_role_create(name=name, password=PASSWORD)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_roles WHERE rolname = %s", [name])
        assert cursor.fetchone()[0] == 0
        cursor.execute("SELECT to_regclass('public.reporting_order') IS NOT NULL")
        assert cursor.fetchone()[0]


@pytest.mark.parametrize("timeout", ["99999999h", "2147483648ms", "25d"])
def test_a_timeout_beyond_what_postgresql_keeps_is_one_clear_line_and_no_role(role_name, timeout):
    with pytest.raises(CommandError, match="at most 24 days"):
        call_command("bi_role", "create", role_name, "--statement-timeout", timeout, stdout=StringIO())
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_roles WHERE rolname = %s", [role_name])
        assert cursor.fetchone()[0] == 0


def test_the_group_cannot_be_taken_as_a_login_name():
    with pytest.raises(InvalidParameterError, match="role name"):
        services.bi_role_create(name=bi.group(), password=PASSWORD)
    with pytest.raises(InvalidParameterError, match="role name"):
        services.bi_role_drop(name=bi.group())


def test_a_hostile_password_is_just_a_password(role_name):
    hostile = "x'; DROP TABLE reporting_order; -- \" $$ %s"
    services.bi_role_create(name=role_name, password=hostile)
    with connect_as(role_name, password=hostile) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (role_name,)
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('public.reporting_order') IS NOT NULL")
        assert cursor.fetchone()[0]


def test_bi_role_check_fails_on_a_missing_grant_and_passes_after_the_grants(role_name, monkeypatch):
    monkeypatch.setenv("REPORTING_BI_PASSWORD", PASSWORD)
    out = StringIO()
    call_command("bi_role", "create", role_name, "--connection-limit", "3", stdout=out)
    assert f"created {role_name}: 3 connections" in out.getvalue()
    assert "default_transaction_read_only=on" in out.getvalue()
    call_command("bi_role", "check", stdout=StringIO())
    with connection.cursor() as cursor:
        cursor.execute(f'REVOKE SELECT ON reporting.order_status_counts FROM "{bi.group()}"')  # noqa: S608
    err = StringIO()
    with pytest.raises(CommandError, match="1 gap"):
        call_command("bi_role", "check", stdout=StringIO(), stderr=err)
    assert "cannot SELECT on reporting.order_status_counts" in err.getvalue()
    call_command("bi_role", "grants", stdout=StringIO())
    call_command("bi_role", "check", stdout=StringIO())
    with connection.cursor() as cursor:
        cursor.execute(f'GRANT SELECT ON public.reporting_order TO "{bi.group()}"')
    with pytest.raises(CommandError):
        call_command("bi_role", "check", stdout=StringIO(), stderr=err)
    assert "can SELECT public.reporting_order" in err.getvalue()
    with connection.cursor() as cursor:
        cursor.execute(f'REVOKE SELECT ON public.reporting_order FROM "{bi.group()}"')  # noqa: S608
    out = StringIO()
    call_command("bi_role", "list", stdout=out)
    assert role_name in out.getvalue()
    call_command("bi_role", "drop", role_name, stdout=StringIO())
    with pytest.raises(CommandError, match="no BI role named"):
        call_command("bi_role", "drop", role_name, stdout=StringIO())


def test_bi_role_create_never_takes_the_password_from_argv(role_name, monkeypatch):
    monkeypatch.delenv("REPORTING_BI_PASSWORD", raising=False)
    with pytest.raises(CommandError, match="REPORTING_BI_PASSWORD"):
        call_command("bi_role", "create", role_name, stdout=StringIO())
    with pytest.raises(CommandError, match="unrecognized arguments"):
        call_command("bi_role", "create", role_name, "--password", "x", stdout=StringIO())


# --- Limits a BI role cannot escape (the watchdog, drift, repair) ---------------------------------------


def run_in_thread(func) -> tuple[threading.Thread, dict]:
    out: dict = {}

    def run() -> None:
        try:
            out["result"] = func()
        except BaseException as exc:
            out["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    return thread, out


def wait_for_session(role: str, state: str, seconds: float, timeout: float = 20) -> None:
    """Wait until a session of ``role`` has been in ``state`` for more than ``seconds``."""
    wait_for_sql(
        "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE usename = %s AND state = %s "
        "AND clock_timestamp() - CASE WHEN state = 'active' THEN query_start ELSE state_change END "
        "> make_interval(secs => %s))",
        [role, state, seconds],
        what=f"a session of {role} {state} for {seconds} s",
        timeout=timeout,
    )


def test_the_watchdog_cancels_a_statement_whose_role_switched_its_timeout_off(role_name, caplog):
    services.bi_role_create(
        name=role_name, password=PASSWORD, role_settings=bi.RoleSettings(statement_timeout="300ms")
    )
    with connect_as(role_name, autocommit=True) as conn:
        conn.execute("SET statement_timeout = 0")  # allowed to any role: its own session
        thread, out = run_in_thread(lambda: conn.execute("SELECT pg_sleep(20)"))
        wait_for_session(role_name, "active", 0.3)
        with caplog.at_level(logging.WARNING, logger="reporting.services.bi_watchdog"):
            actions = services.bi_watchdog_run()
        thread.join(20)
    assert [(a.action, a.role) for a in actions] == [("cancelled", role_name)]
    assert "over its limit of 0.3 s" in actions[0].reason
    assert isinstance(out.get("error"), errors.QueryCanceled), out
    assert f"cancelled the statement of role {role_name}" in caplog.text


def test_the_watchdog_ends_a_session_idle_in_a_transaction_past_its_limit(role_name):
    services.bi_role_create(
        name=role_name,
        password=PASSWORD,
        role_settings=bi.RoleSettings(idle_in_transaction_session_timeout="400ms"),
    )
    conn = connect_as(role_name)
    try:
        conn.execute("SET idle_in_transaction_session_timeout = 0")
        conn.execute("SELECT count(*) FROM order_status_counts")  # opens a transaction, then idles in it
        wait_for_session(role_name, "idle in transaction", 0.4)
        actions = services.bi_watchdog_run()
        assert [(a.action, a.role) for a in actions] == [("terminated", role_name)]
        with pytest.raises(psycopg.OperationalError):
            conn.execute("SELECT 1")
    finally:
        conn.close()


def test_the_watchdog_leaves_other_roles_and_short_statements_alone(role_name):
    services.bi_role_create(name=role_name, password=PASSWORD)  # 30 s statement timeout
    with connect_as(role_name, autocommit=True) as conn, raw_connect() as owner:
        thread, out = run_in_thread(lambda: conn.execute("SELECT pg_sleep(1)"))
        other, other_out = run_in_thread(lambda: owner.execute("SELECT pg_sleep(1)"))
        wait_for_session(role_name, "active", 0.2)
        assert services.bi_watchdog_run() == []
        thread.join(20)
        other.join(20)
    assert "error" not in out and "error" not in other_out


def test_the_watchdog_ends_a_session_whose_statement_ignores_the_cancel(role_name):
    services.bi_role_create(
        name=role_name, password=PASSWORD, role_settings=bi.RoleSettings(statement_timeout="300ms")
    )
    stubborn = (
        "DO $$BEGIN LOOP BEGIN PERFORM pg_sleep(0.2); "
        "EXCEPTION WHEN query_canceled THEN NULL; END; END LOOP; END$$"
    )
    with connect_as(role_name, autocommit=True) as conn:
        conn.execute("SET statement_timeout = 0")
        thread, out = run_in_thread(lambda: conn.execute(stubborn))
        wait_for_session(role_name, "active", 0.3)
        # A generous grace: a slow machine must not make the first round end the session.
        assert [a.action for a in services.bi_watchdog_run(grace=5)] == ["cancelled"]
        wait_for_session(role_name, "active", 5.3)
        assert [a.action for a in services.bi_watchdog_run(grace=5)] == ["terminated"]
        thread.join(20)
    assert isinstance(out.get("error"), psycopg.OperationalError), out


def test_the_watchdog_ends_a_transaction_kept_open_past_its_limit(role_name):
    services.bi_role_create(
        name=role_name, password=PASSWORD, role_settings=bi.RoleSettings(transaction_timeout="1s")
    )
    conn = connect_as(role_name)
    try:
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:  # short statements, never idle long
            conn.execute("SELECT count(*) FROM order_status_counts")
            time.sleep(0.1)
        actions = services.bi_watchdog_run()
        assert [(a.action, a.role) for a in actions] == [("terminated", role_name)]
        assert "its transaction is" in actions[0].reason
        with pytest.raises(psycopg.OperationalError):
            conn.execute("SELECT 1")
    finally:
        conn.close()


def test_a_bi_session_holding_locks_it_has_no_right_to_is_ended(role_name, data):
    """PREPARE takes a statement's locks before its privileges are checked, and keeps them."""
    services.bi_role_create(name=role_name, password=PASSWORD)
    conn = connect_as(role_name)
    try:
        conn.execute("PREPARE block_refresh AS SELECT * FROM public.reporting_refreshlock FOR UPDATE")
        conn.execute("PREPARE block_migrate AS SELECT * FROM public.reporting_order FOR UPDATE")
        shop_services.order_status_record(order_id=1, status="cancelled")
        assert services.views_refresh().outcome == RefreshOutcome.SKIPPED, "the lock really is in the way"
        actions = services.bi_watchdog_run()
        assert [(a.action, a.role) for a in actions] == [("terminated", role_name)]
        assert "RowShareLock on reporting_refreshlock" in actions[0].reason
        assert services.views_refresh().outcome == RefreshOutcome.OK
    finally:
        conn.close()
    # Reads, even long transactions of them, hold nothing the watchdog minds.
    with connect_as(role_name) as reader:
        reader.execute("SET transaction_read_only = off")
        reader.execute("SELECT count(*) FROM order_latest_status_live").fetchone()
        reader.execute("CREATE TEMP TABLE mine AS SELECT order_id FROM order_latest_status")
        assert services.bi_watchdog_run() == []
        assert reader.execute("SELECT count(*) FROM mine").fetchone() == (50,)


def test_settings_a_role_gave_itself_are_reported_and_repaired(role_name):
    services.bi_role_create(name=role_name, password=PASSWORD)
    assert selectors.bi_grants_check() == []
    with connect_as(role_name, autocommit=True) as conn:
        conn.execute("SET default_transaction_read_only = off")
        conn.execute(f'ALTER ROLE "{role_name}" SET statement_timeout = 0')
        conn.execute(f'ALTER ROLE "{role_name}" SET default_transaction_read_only = off')
        (database,) = conn.execute("SELECT current_database()").fetchone() or ("",)
        conn.execute(f'ALTER ROLE "{role_name}" IN DATABASE "{database}" SET work_mem = \'1GB\'')
    gaps = [str(g) for g in selectors.bi_grants_check()]
    assert f"BI role {role_name}: sets statement_timeout=0" in gaps
    assert f"BI role {role_name}: sets default_transaction_read_only=off" in gaps
    assert f"BI role {role_name}: sets work_mem=1GB in database {database}" in gaps
    assert f"BI role {role_name}: lacks statement_timeout=30s" in gaps
    err = StringIO()
    with pytest.raises(CommandError, match="bi_role repair"):
        call_command("bi_role", "check", stdout=StringIO(), stderr=err)
    assert "sets statement_timeout=0" in err.getvalue()
    out = StringIO()
    call_command("bi_role", "repair", stdout=out)
    assert role_name in out.getvalue()
    assert selectors.bi_grants_check() == []
    with connect_as(role_name) as conn:
        assert conn.execute("SHOW statement_timeout").fetchone() == ("30s",)
        assert conn.execute("SHOW default_transaction_read_only").fetchone() == ("on",)
        assert conn.execute("SHOW work_mem").fetchone() != ("1GB",)


def test_a_bi_role_runs_without_jit_and_an_older_role_is_repaired_to_it(role_name):
    """Plain SQL on the real-time views plans a costly branch it rarely runs: JIT off for BI roles."""
    services.bi_role_create(name=role_name, password=PASSWORD)
    with connect_as(role_name) as conn:
        assert conn.execute("SHOW jit").fetchone() == ("off",)
    # A role made before this setting existed: reported, and repaired.
    with connection.cursor() as cursor:
        cursor.execute(f'ALTER ROLE "{role_name}" RESET jit')
    assert [str(g) for g in selectors.bi_grants_check()] == [f"BI role {role_name}: lacks jit=off"]
    services.bi_roles_repair()
    assert selectors.bi_grants_check() == []


def role_recorded_in(cursor, name: str, database: str) -> None:
    """Make ``name`` look like a role that another database of the cluster made and records."""
    cursor.execute(f'COMMENT ON ROLE "{name}" IS %s', [bi.home_comment(database)])
    BiRoleLimits.objects.filter(name=name).delete()


def test_a_bi_role_of_another_database_is_left_to_it(role_name):
    """Roles are the cluster's: a second database with the same group sees the first one's roles."""
    services.bi_role_create(name=role_name, password=PASSWORD)
    with connection.cursor() as cursor:
        cursor.execute("SELECT shobj_description(%s::regrole, 'pg_authid'), current_database()", [role_name])
        comment, database = cursor.fetchone()
        assert comment == bi.home_comment(database), "the role names the database that records it"
        # template1 stands for the database that made it: one that every cluster has.
        role_recorded_in(cursor, role_name, "template1")
    assert selectors.bi_grants_check() == [], "not a gap here"
    assert any(f"BI role {role_name} is recorded in database template1" in n for n in selectors.bi_notes())
    assert services.bi_roles_repair() == []
    assert not BiRoleLimits.objects.filter(name=role_name).exists(), "repair here does not take it over"
    # Its sessions are the other database's watchdog's (which watches every database):
    # here even a lock that no read takes is left to it.
    hold = "PREPARE hold AS SELECT * FROM public.reporting_refreshlock FOR UPDATE"
    with connect_as(role_name) as conn:
        conn.execute(hold)
        assert services.bi_watchdog_run(grace=0.1) == []
    # A database that no longer exists records nothing: the role is this one's to adopt.
    with connection.cursor() as cursor:
        role_recorded_in(cursor, role_name, "no_such_database_any_more")
    assert [str(g) for g in selectors.bi_grants_check()] == [
        f"BI role {role_name}: has no recorded limits ('bi_role repair' records the defaults)"
    ]
    assert services.bi_roles_repair() == [role_name]
    assert selectors.bi_grants_check() == []
    conn = connect_as(role_name)
    try:
        conn.execute(hold)
        assert [a.action for a in services.bi_watchdog_run(grace=0.1)] == ["terminated"]
    finally:
        conn.close()


def test_a_role_made_by_hand_in_the_group_is_reported_until_repaired(role_name):
    services.bi_grants_apply(create_group=True)
    with connection.cursor() as cursor:
        cursor.execute(f'CREATE ROLE "{role_name}" LOGIN IN ROLE "{bi.group()}"')
    assert [g.kind for g in selectors.bi_grants_check()] == ["drift"]
    services.bi_roles_repair()
    assert selectors.bi_grants_check() == []
    assert BiRoleLimits.objects.get(name=role_name).statement_timeout == bi.RoleSettings().statement_timeout


def test_a_bi_role_cannot_take_or_block_the_refresh_lock(role_name, data):
    services.bi_role_create(name=role_name, password=PASSWORD)
    old_advisory_key = int.from_bytes(b"rptviews", "big") - 2**63
    with connect_as(role_name, autocommit=True) as conn:
        # The advisory lock earlier versions serialised refreshes with: any role can take it.
        conn.execute("SELECT pg_advisory_lock(%s)", [old_advisory_key])
        held = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
        assert conn.execute(held).fetchone() == (1,)
        conn.execute("SET default_transaction_read_only = off")
        for statement in (
            "LOCK TABLE public.reporting_refreshlock IN EXCLUSIVE MODE",
            "LOCK TABLE public.reporting_refreshlock IN ROW SHARE MODE",
            "SELECT * FROM public.reporting_refreshlock FOR UPDATE",
        ):
            with conn.transaction(), pytest.raises(errors.InsufficientPrivilege):
                conn.execute(statement)
        shop_services.order_status_record(order_id=1, status="cancelled")
        result = services.views_refresh()
        assert result.outcome == RefreshOutcome.OK, result
        assert services.views_refresh(force=True).outcome == RefreshOutcome.OK


# --- The schema and privileges of others ------------------------------------------------------------------


@pytest.fixture
def foreign_table():
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE reporting.customer_emails (email text)")
        cursor.execute("INSERT INTO reporting.customer_emails VALUES ('someone@example.com')")
    yield "reporting.customer_emails"
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS reporting.customer_emails")


def test_objects_of_others_in_the_schema_stay_unreadable_and_are_reported(role_name, foreign_table):
    services.bi_role_create(name=role_name, password=PASSWORD)
    services.bi_grants_apply()
    with connect_as(role_name, autocommit=True) as conn:
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute("SELECT * FROM reporting.customer_emails")
        assert conn.execute("SELECT count(*) FROM reporting.order_status_counts").fetchone() is not None
    gaps = selectors.bi_grants_check()
    assert [(g.kind, g.target) for g in gaps] == [("foreign", "table reporting.customer_emails")]
    with connection.cursor() as cursor:
        # A table the owner creates there later is not readable by default either.
        cursor.execute("CREATE TABLE reporting.later (secret text)")
    try:
        with connect_as(role_name, autocommit=True) as conn, pytest.raises(errors.InsufficientPrivilege):
            conn.execute("SELECT * FROM reporting.later")
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE reporting.later")


def test_migrate_refuses_a_schema_with_objects_of_others_unless_told(foreign_table, settings):
    with pytest.raises(bi.ForeignSchemaObjectsError, match=r"table reporting\.customer_emails"):
        services.reporting_schema_create()
    with pytest.raises(CommandError, match=r"REPORTING_SCHEMA_TAKE_OVER=1"):
        call_command("migrate", verbosity=0)
    settings.REPORTING_SCHEMA_TAKE_OVER = "1"
    services.reporting_schema_create()
    call_command("migrate", verbosity=0)


def test_privileges_that_are_not_the_projects_are_left_alone(role_name):
    with connection.cursor() as cursor:
        # What PostgreSQL 14 and older grant by default.
        cursor.execute("GRANT CREATE ON SCHEMA public TO PUBLIC")
    try:
        services.bi_role_create(name=role_name, password=PASSWORD)
        services.bi_roles_repair()
        with connection.cursor() as cursor:
            cursor.execute("SELECT has_schema_privilege('public', 'public', 'CREATE')")
            assert cursor.fetchone() == (True,), "the project must not revoke PUBLIC's privileges"
        assert ("extra", "CREATE in schema", "public") in [
            (g.kind, g.privilege, g.target) for g in selectors.bi_grants_check()
        ]
        assert any("REVOKE CREATE ON SCHEMA public FROM PUBLIC" in note for note in selectors.bi_notes())
    finally:
        with connection.cursor() as cursor:
            cursor.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")


def test_grants_on_a_clean_cluster_reach_every_declared_view_and_only_them(role_name, data):
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [bi.group()])
        assert cursor.fetchone() is None, "the test starts without the group"
    services.bi_role_create(name=role_name, password=PASSWORD)
    declared = bi.declared_views()
    assert set(declared) == set(reporting_views())
    with connect_as(role_name, autocommit=True) as conn:
        for view in declared:
            conn.execute(f"SELECT * FROM reporting.{view} LIMIT 1").fetchall()  # noqa: S608 - catalog names
        defaults = conn.execute(
            "SELECT count(*) FROM pg_default_acl d JOIN pg_namespace n ON n.oid = d.defaclnamespace "
            "WHERE n.nspname = 'reporting'"
        ).fetchone()
    assert defaults == (0,), "no default privileges: nothing created there later is readable by itself"


@pytest.mark.slow
def test_the_scheduler_runs_the_watchdog(role_name, bi_group, tmp_path):
    services.bi_role_create(
        name=role_name, password=PASSWORD, role_settings=bi.RoleSettings(statement_timeout="500ms")
    )
    env = subprocess_env() | {
        "REPORTING_BI_GROUP": bi_group,
        "REPORTING_BI_WATCHDOG_INTERVAL": "0.5",
        "REPORTING_REFRESH_INTERVAL": "3600",
    }
    log_path = tmp_path / "scheduler.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, MANAGE, "run_scheduler", "--no-startup-refresh"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 120
            while "Scheduler started" not in log_path.read_text():
                assert proc.poll() is None and time.monotonic() < deadline, log_path.read_text()
                time.sleep(0.1)
            with connect_as(role_name, autocommit=True) as conn:
                conn.execute("SET statement_timeout = 0")
                # Cancelled; or, on a machine too busy to run a round in time, ended a grace later.
                with pytest.raises((errors.QueryCanceled, errors.AdminShutdown)):
                    conn.execute("SELECT pg_sleep(60)")
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
    assert proc.returncode == 0
    assert re.search(rf"BI watchdog (cancelled|terminated) the \w+ of role {role_name}", log_path.read_text())


def test_roles_that_administer_the_group_are_not_bi_roles(role_name, bi_group):
    """From PostgreSQL 16 the role that creates the group is its member WITH ADMIN OPTION."""
    services.bi_role_create(name=role_name, password=PASSWORD)
    admin = f"adm_{uuid.uuid4().hex[:10]}"
    with connection.cursor() as cursor:
        cursor.execute(f'CREATE ROLE "{admin}" LOGIN PASSWORD %s', [PASSWORD])
        cursor.execute(f'GRANT "{bi_group}" TO "{admin}" WITH ADMIN OPTION')
    try:
        assert [r.name for r in selectors.bi_role_list()] == [role_name]
        assert selectors.bi_grants_check() == [], "the administrator has no recorded limits, and needs none"
        with connect_as(admin, autocommit=True) as conn:
            conn.execute("SET statement_timeout = 0")
            thread, out = run_in_thread(lambda: conn.execute("SELECT pg_sleep(1.5)"))
            wait_for_session(admin, "active", 0.5)
            assert services.bi_watchdog_run(grace=0.1) == [], "not a BI session"
            thread.join(20)
        assert "error" not in out
    finally:
        with connection.cursor() as cursor:
            drop_login_role(cursor, admin)


def test_a_watchdog_that_cannot_see_the_sessions_says_so(role_name):
    services.bi_role_create(name=role_name, password=PASSWORD)
    watcher = f"watch_{uuid.uuid4().hex[:10]}"
    with connection.cursor() as cursor:
        cursor.execute(f'CREATE ROLE "{watcher}" LOGIN PASSWORD %s IN ROLE pg_signal_backend', [PASSWORD])
        cursor.execute(f'GRANT SELECT ON reporting_birolelimits TO "{watcher}"')
    try:
        with extra_connection("blind", USER=watcher, PASSWORD=PASSWORD), connect_as(role_name) as conn:
            conn.execute("SELECT 1")  # a BI session, idle in a transaction
            with pytest.raises(bi.WatchdogBlindError, match="pg_read_all_stats"):
                services.bi_watchdog_run(using="blind")
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f'REVOKE SELECT ON reporting_birolelimits FROM "{watcher}"')  # noqa: S608
            drop_login_role(cursor, watcher)


def test_bi_role_commands_fail_with_one_clear_line(role_name, monkeypatch):
    err = StringIO()
    with pytest.raises(CommandError, match="1 gap"):
        call_command("bi_role", "check", stdout=StringIO(), stderr=err)
    assert f"{bi.group()} cannot exist as a role" in err.getvalue(), "no traceback before the group exists"
    monkeypatch.delenv("REPORTING_BI_PASSWORD", raising=False)
    # The name is checked before a password is asked for.
    with pytest.raises(CommandError, match="invalid role name 'Bad Name'"):
        call_command("bi_role", "create", "Bad Name", stdout=StringIO())
    with pytest.raises(CommandError, match="any name but the BI group's own"):
        call_command("bi_role", "create", bi.group(), stdout=StringIO())
    monkeypatch.setenv("REPORTING_BI_PASSWORD", PASSWORD)
    out = StringIO()
    call_command("bi_role", "create", role_name, "--transaction-timeout", "5min", stdout=out)
    assert "transaction timeout 5min" in out.getvalue()


def test_a_bi_tool_lists_the_reports_with_their_comments_and_no_plumbing(role_name, data):
    import sqlalchemy

    services.bi_role_create(name=role_name, password=PASSWORD)
    params = connection.get_connection_params()
    url = sqlalchemy.engine.URL.create(
        "postgresql+psycopg",
        username=role_name,
        password=PASSWORD,
        host=str(params["host"]),
        port=int(params["port"]) if params.get("port") else None,
        database=connection.settings_dict["NAME"],
    )
    engine = sqlalchemy.create_engine(url)
    try:
        inspector = sqlalchemy.inspect(engine)
        views = set(inspector.get_view_names(schema="reporting"))
        matviews = set(inspector.get_materialized_view_names(schema="reporting"))
        assert matviews == {
            "order_latest_status",
            "order_status_counts",
            "order_daily_status",
            "order_status_transitions",
            "order_transitions_daily",
        }
        assert views == {
            "order_latest_status_live",
            "order_status_counts_live",
            "order_daily_status_live",
            "freshness",
            "orders",
            "order_status_history",
            "order_status_transitions_live",
            "order_transitions_daily_live",
            "order_transition_times_weekly_live",
            "order_latest_row",
            "order_latest_row_live",
        }
        for view in views | matviews:
            assert inspector.get_table_comment(view, schema="reporting")["text"], f"{view} has no comment"
            for column in inspector.get_columns(view, schema="reporting"):
                assert column.get("comment"), f"{view}.{column['name']} has no comment"
        assert "snapshot_state" not in views and "pending_changes" not in views
        with engine.connect() as conn:
            for internal in ("public.reporting_snapshot_state", "public.reporting_pending_changes"):
                with pytest.raises(sqlalchemy.exc.ProgrammingError, match="permission denied"):
                    conn.execute(sqlalchemy.text(f"SELECT * FROM {internal}"))  # noqa: S608 - constants
                conn.rollback()
            counts = conn.execute(sqlalchemy.text("SELECT status FROM order_status_counts_live")).all()
            statuses = [row.status for row in counts]
            # NULL (the orders without rows) last, as PostgreSQL sorts it.
            assert statuses == sorted(statuses, key=lambda s: (s is None, s)), "a stable order"
            history = conn.execute(
                sqlalchemy.text(
                    "SELECT status, previous_status, latest FROM order_status_history "
                    "WHERE order_id = 1 ORDER BY created, status_id"
                )
            ).all()
            assert history[0].previous_status is None and history[-1].latest
            assert all(
                later.previous_status == earlier.status for earlier, later in itertools.pairwise(history)
            )
            # The ready-made analytics answer in plain SQL, like the selectors.
            daily = conn.execute(
                sqlalchemy.text(
                    "SELECT from_status, to_status, sum(transitions) AS n FROM order_transitions_daily_live "
                    "GROUP BY 1, 2"
                )
            ).all()
            assert {(r.from_status, r.to_status): r.n for r in daily if r.n} == {
                kind: n
                for kind, n in selectors.order_transitions_daily(days=3660, strategy="live").totals().items()
                if n
            }
            weeks = conn.execute(
                sqlalchemy.text(
                    "SELECT week, to_status, transitions, median FROM order_transition_times_weekly_live "
                    "WHERE week >= :since ORDER BY week, to_status"
                ),
                {"since": EPOCH.date() - dt.timedelta(days=35)},
            ).all()
            assert weeks and all(
                r.to_status in ("complete", "cancelled") and r.median is not None for r in weeks
            )
    finally:
        engine.dispose()


# --- What the product needs, which BI sessions cannot hold (issue 24) --------------------------------------


@pytest.fixture
def prepared_transactions():
    """A server that allows PREPARE TRANSACTION (the embedded one does; CI's PostgreSQL 15 too)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('max_prepared_transactions')::int")
        if cursor.fetchone()[0] == 0:
            pytest.skip("max_prepared_transactions is 0 on this server: no prepared transaction can exist")


def prepared_gids(role: str) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT gid FROM pg_prepared_xacts WHERE owner = %s ORDER BY gid", [role])
        return [row[0] for row in cursor.fetchall()]


def test_a_prepared_transaction_of_a_bi_role_is_named_by_who_waits_and_rolled_back_by_the_watchdog(
    role_name, data, prepared_transactions, caplog
):
    """A prepared transaction keeps its locks after its session ends: no session for the watchdog to end."""
    services.bi_role_create(name=role_name, password=PASSWORD)
    gid = f"bi_hold_{uuid.uuid4().hex[:8]}"
    with connect_as(role_name) as conn:
        # The refresh lock by its name in schema public; the fold lock through a view it may read.
        conn.execute("PREPARE block_refresh AS SELECT * FROM public.reporting_refreshlock FOR UPDATE")
        conn.execute("PREPARE block_fold AS SELECT * FROM reporting.freshness FOR UPDATE")
        conn.execute(f"PREPARE TRANSACTION '{gid}'")
    assert prepared_gids(role_name) == [gid], "the session is gone, its transaction is not"
    shop_services.order_status_record(order_id=1, status="cancelled")

    refresh = services.views_refresh()
    assert refresh.outcome == RefreshOutcome.SKIPPED, "the prepared transaction really is in the way"
    assert f"prepared transaction '{gid}' (role {role_name}" in refresh.error
    assert "pid None" not in refresh.error
    with caplog.at_level(logging.INFO, logger="reporting.services.fold"):
        fold = services.overlay_fold()
    assert fold.outcome == "skipped"
    assert f"prepared transaction '{gid}' (role {role_name}" in fold.holder
    assert f"Fold skipped: the fold lock is held by prepared transaction '{gid}'" in caplog.text

    err, out = StringIO(), StringIO()
    with pytest.raises(CommandError, match="1 gap"):
        call_command("bi_role", "check", stdout=out, stderr=err)
    assert f"BI role {role_name} has a prepared transaction '{gid}'" in err.getvalue()
    assert "RowShareLock on reporting_refreshlock" in err.getvalue()
    assert "note: max_prepared_transactions is" in out.getvalue()

    with caplog.at_level(logging.WARNING, logger="reporting.services.bi_watchdog"):
        actions = services.bi_watchdog_run()
    assert [(a.action, a.role) for a in actions] == [("rolled back", role_name)]
    assert "RowShareLock on reporting_refreshlock" in actions[0].reason
    assert "RowShareLock on reporting_fold" in actions[0].reason
    assert f"BI watchdog rolled back prepared transaction '{gid}' of role {role_name}" in caplog.text
    assert prepared_gids(role_name) == []
    assert services.views_refresh().outcome == RefreshOutcome.OK
    assert services.overlay_fold().outcome != "skipped"
    call_command("bi_role", "check", stdout=StringIO())


def test_a_refresh_that_cannot_get_its_lock_names_the_session_with_its_state_and_query_start(role_name, data):
    services.bi_role_create(name=role_name, password=PASSWORD)
    conn = connect_as(role_name)
    try:
        conn.execute("SET application_name = 'sneaky tool'")
        conn.execute("PREPARE block_refresh AS SELECT * FROM public.reporting_refreshlock FOR UPDATE")
        pid = conn.info.backend_pid
        shop_services.order_status_record(order_id=1, status="cancelled")
        result = services.views_refresh()
        assert result.outcome == RefreshOutcome.SKIPPED
        expected = (
            f"held by pid {pid} (role {role_name}, application 'sneaky tool', state idle in transaction"
        )
        assert expected in result.error
        assert ", query started " in result.error
    finally:
        conn.close()


# Every lock mode but ACCESS SHARE blocks something the product does (a refresh's
# EXCLUSIVE, a view sync's ACCESS EXCLUSIVE): the watchdog ends a BI session
# holding any of them. Without privileges a BI session takes ROW SHARE and ROW
# EXCLUSIVE (a PREPAREd statement locks before its privileges are checked); a
# grant made by mistake gives it the rest with LOCK TABLE.
PREPARED_LOCKS = {
    "RowShareLock on reporting_refreshlock": (
        "PREPARE s AS SELECT * FROM public.reporting_refreshlock FOR UPDATE"
    ),
    "RowShareLock on reporting_fold": "PREPARE s AS SELECT * FROM reporting.freshness FOR SHARE",
    "RowExclusiveLock on reporting_refreshlock": "PREPARE s AS DELETE FROM public.reporting_refreshlock",
    "RowExclusiveLock on reporting.order_latest_status": (
        "PREPARE s AS INSERT INTO reporting.order_latest_status SELECT * FROM reporting.order_latest_status"
    ),
}
LOCK_MODES = [
    "ROW SHARE",
    "ROW EXCLUSIVE",
    "SHARE UPDATE EXCLUSIVE",
    "SHARE",
    "SHARE ROW EXCLUSIVE",
    "EXCLUSIVE",
    "ACCESS EXCLUSIVE",
]


@pytest.fixture
def granted_table(role_name):
    """A table in a schema of its own on which the BI role was granted everything, by mistake."""
    schema = f"granted_{uuid.uuid4().hex[:8]}"
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE SCHEMA {schema}")
        cursor.execute(f"CREATE TABLE {schema}.t (id int)")
    yield f"{schema}.t"
    with connection.cursor() as cursor:
        cursor.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.mark.parametrize("lock", sorted(PREPARED_LOCKS))
def test_the_watchdog_ends_a_bi_session_holding_a_lock_it_took_without_privileges(role_name, data, lock):
    services.bi_role_create(name=role_name, password=PASSWORD)
    conn = connect_as(role_name)
    try:
        conn.execute(PREPARED_LOCKS[lock])
        actions = services.bi_watchdog_run()
        assert [(a.action, a.role) for a in actions] == [("terminated", role_name)]
        assert lock in actions[0].reason
    finally:
        conn.close()


@pytest.mark.parametrize("mode", LOCK_MODES)
def test_the_watchdog_ends_a_bi_session_holding_any_lock_mode_but_access_share(
    role_name, granted_table, mode
):
    services.bi_role_create(name=role_name, password=PASSWORD)
    with connection.cursor() as cursor:
        schema = granted_table.split(".")[0]
        cursor.execute(f'GRANT USAGE ON SCHEMA {schema} TO "{role_name}"')
        cursor.execute(f'GRANT ALL ON {granted_table} TO "{role_name}"')
    conn = connect_as(role_name)
    try:
        conn.execute("SET default_transaction_read_only = off")
        conn.commit()
        conn.execute(f"LOCK TABLE {granted_table} IN ACCESS SHARE MODE")
        assert services.bi_watchdog_run() == [], "a read's lock is no reason"
        conn.execute(f"LOCK TABLE {granted_table} IN {mode} MODE")
        actions = services.bi_watchdog_run()
        assert [(a.action, a.role) for a in actions] == [("terminated", role_name)]
        words = "".join(word.capitalize() for word in mode.split()) + "Lock"
        assert f"{words} on {granted_table}" in actions[0].reason
    finally:
        conn.close()


def test_the_watchdog_ends_a_session_idle_in_an_aborted_transaction_past_its_limit(role_name):
    services.bi_role_create(
        name=role_name,
        password=PASSWORD,
        role_settings=bi.RoleSettings(idle_in_transaction_session_timeout="400ms"),
    )
    conn = connect_as(role_name)
    try:
        conn.execute("SET idle_in_transaction_session_timeout = 0")
        conn.commit()  # or the abort below would undo the SET too
        with pytest.raises(errors.DivisionByZero):
            conn.execute("SELECT 1 / 0")  # the transaction is aborted, and stays open until ROLLBACK
        wait_for_session(role_name, "idle in transaction (aborted)", 0.4)
        actions = services.bi_watchdog_run()
        assert [(a.action, a.role) for a in actions] == [("terminated", role_name)]
        assert "idle in a transaction" in actions[0].reason
    finally:
        conn.close()


def test_a_bi_role_that_reconnects_to_hold_the_lock_again_is_locked_out_until_unlocked(
    role_name, data, settings, caplog, monkeypatch
):
    settings.REPORTING_BI_LOCKOUT_TERMINATIONS = "3"
    settings.REPORTING_BI_LOCKOUT_WINDOW = "600"
    services.bi_role_create(name=role_name, password=PASSWORD)
    hold = "PREPARE hold AS SELECT * FROM public.reporting_refreshlock FOR UPDATE"
    rounds = []
    with caplog.at_level(logging.WARNING, logger="reporting.services.bi_watchdog"):
        for _ in range(3):
            conn = connect_as(role_name)  # a reconnect loop: ended, back at once
            try:
                conn.execute(hold)
                rounds.append([(a.action, a.role) for a in services.bi_watchdog_run()])
            finally:
                conn.close()
    assert rounds[:2] == [[("terminated", role_name)]] * 2
    assert rounds[2] == [("terminated", role_name), ("locked", role_name)]
    assert f"BI watchdog locked out role {role_name} (NOLOGIN): 3 of its sessions" in caplog.text
    assert f"'manage.py bi_role unlock {role_name}'" in caplog.text
    with pytest.raises(psycopg.OperationalError, match="not permitted to log in"):
        connect_as(role_name)
    assert BiRoleLockout.objects.get(name=role_name).terminations == 3

    out = StringIO()
    call_command("bi_role", "list", stdout=out)
    assert "locked out (NOLOGIN) by the BI watchdog" in out.getvalue()
    err = StringIO()
    with pytest.raises(CommandError, match=r"'bi_role unlock NAME'"):
        call_command("bi_role", "check", stdout=StringIO(), stderr=err)
    assert f"BI role {role_name}: locked out (NOLOGIN)" in err.getvalue()
    # A repair restores the role's limits, not its login.
    services.bi_roles_repair()
    with pytest.raises(psycopg.OperationalError, match="not permitted to log in"):
        connect_as(role_name)

    out = StringIO()
    call_command("bi_role", "unlock", role_name, stdout=out)
    assert f"unlocked {role_name}" in out.getvalue()
    with connect_as(role_name) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    call_command("bi_role", "check", stdout=StringIO())
    # Its terminations before the unlock are forgotten: the next one alone does not lock it again.
    conn = connect_as(role_name)
    try:
        conn.execute(hold)
        assert [a.action for a in services.bi_watchdog_run()] == ["terminated"]
    finally:
        conn.close()


def test_a_lockout_can_be_turned_off_and_its_settings_are_validated(role_name, data, settings):
    from django.core.exceptions import ImproperlyConfigured

    from reporting import conf

    for name, value in (
        ("REPORTING_BI_LOCKOUT_TERMINATIONS", "-1"),
        ("REPORTING_BI_LOCKOUT_TERMINATIONS", "ten"),
        ("REPORTING_BI_LOCKOUT_TERMINATIONS", "100001"),
        ("REPORTING_BI_LOCKOUT_WINDOW", "0"),
        ("REPORTING_BI_LOCKOUT_WINDOW", "nan"),
        ("REPORTING_BI_LOCKOUT_WINDOW", "86401"),
    ):
        setattr(settings, name, value)
        with pytest.raises(ImproperlyConfigured, match=name):
            conf.bi_lockout_terminations()
            conf.bi_lockout_window()
        delattr(settings, name)
    settings.REPORTING_BI_LOCKOUT_TERMINATIONS = "0"
    services.bi_role_create(name=role_name, password=PASSWORD)
    for _ in range(3):
        conn = connect_as(role_name)
        try:
            conn.execute("PREPARE hold AS SELECT * FROM public.reporting_refreshlock FOR UPDATE")
            assert [a.action for a in services.bi_watchdog_run()] == ["terminated"]
        finally:
            conn.close()
    assert not BiRoleLockout.objects.filter(name=role_name).exists()
