"""BI roles, tested by connecting as them for real."""

from __future__ import annotations

import contextlib
import uuid
from io import StringIO

import psycopg
import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django_pgviews.models import ViewSyncer
from psycopg import errors

from reporting import bi, services
from reporting.exceptions import InvalidParameterError
from reporting.matviews import OrderLatestStatusView, view_sql
from tests.conftest import raw_connect
from tests.factories import EPOCH

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "correct horse battery staple"


def connect_as(name: str, password: str = PASSWORD, *, autocommit: bool = False) -> psycopg.Connection:
    return raw_connect(autocommit=autocommit, user=name, password=password)


@pytest.fixture
def role_name():
    name = f"bi_test_{uuid.uuid4().hex[:10]}"
    yield name
    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE usename = %s", [name])
        for (pid,) in cursor.fetchall():
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
        cursor.execute(f'DROP ROLE IF EXISTS "{name}"')


@pytest.fixture
def data():
    services.orders_seed(orders=50, seed=1, until=EPOCH)
    services.views_refresh(force=True)


def reporting_views() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'reporting' AND c.relkind IN ('v', 'm') ORDER BY 1"
        )
        return [row[0] for row in cursor.fetchall()]


def test_a_bi_role_reads_every_reporting_view_and_nothing_else(role_name, data):
    bi.bi_role_create(name=role_name, password=PASSWORD)
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
            "INSERT INTO public.reporting_orderstatus (order_id, created, status) VALUES (1, now(), 'x')",
            "UPDATE public.reporting_orderstatus SET status = 'cancelled'",
            "DELETE FROM public.reporting_order",
            "INSERT INTO reporting.order_latest_status VALUES (1, 1, 'pending', now())",
            "DELETE FROM reporting.order_latest_status_live",
            "CREATE TABLE public.sneaky (id int)",
            "CREATE TABLE reporting.sneaky (id int)",
            "REFRESH MATERIALIZED VIEW reporting.order_latest_status",
        ):
            with pytest.raises((errors.InsufficientPrivilege, errors.ObjectNotInPrerequisiteState)):
                conn.execute(statement)
    assert bi.bi_grants_check() == []


def test_passwords_are_checked_and_can_be_rotated(role_name):
    bi.bi_role_create(name=role_name, password=PASSWORD)
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
    bi.bi_role_rotate_password(name=role_name, password="another long password")
    with connect_as(role_name, password="another long password") as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_a_query_longer_than_the_statement_timeout_is_cancelled(role_name):
    bi.bi_role_create(
        name=role_name, password=PASSWORD, role_settings=bi.RoleSettings(statement_timeout="300ms")
    )
    with connect_as(role_name) as conn, pytest.raises(errors.QueryCanceled, match="statement timeout"):
        conn.execute("SELECT pg_sleep(3)")


def test_the_connection_limit_holds(role_name):
    bi.bi_role_create(name=role_name, password=PASSWORD, role_settings=bi.RoleSettings(connection_limit=2))
    with contextlib.ExitStack() as stack:
        for _ in range(2):
            stack.enter_context(connect_as(role_name))
        with pytest.raises(psycopg.OperationalError, match="too many connections for role"):
            connect_as(role_name)


def test_the_role_still_reads_a_view_rebuilt_by_a_new_sql_version(role_name, data, monkeypatch):
    bi.bi_role_create(name=role_name, password=PASSWORD)
    original_oid = _oid()
    monkeypatch.setattr(
        OrderLatestStatusView,
        "sql",
        view_sql("order_latest_status_v1").replace("AS s\n", "AS s WHERE s.id > 0\n"),
    )
    try:
        ViewSyncer().run(force=True, update=True, using="default", materialized_views_check_sql_changed=True)
        assert _oid() != original_oid, "the view was not rebuilt"
        with connect_as(role_name) as conn:
            assert conn.execute("SELECT count(*) FROM reporting.order_latest_status").fetchone() == (50,)
            conn.execute("SELECT count(*) FROM reporting.order_latest_status_live").fetchone()
        assert bi.bi_grants_check() == []
    finally:
        monkeypatch.undo()
        ViewSyncer().run(force=True, update=True, using="default", materialized_views_check_sql_changed=True)


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
        bi.bi_role_create(name=name, password=PASSWORD)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_roles WHERE rolname = %s", [name])
        assert cursor.fetchone()[0] == 0
        cursor.execute("SELECT to_regclass('public.reporting_order') IS NOT NULL")
        assert cursor.fetchone()[0]


def test_the_group_cannot_be_taken_as_a_login_name():
    with pytest.raises(InvalidParameterError, match="role name"):
        bi.bi_role_create(name=bi.GROUP, password=PASSWORD)
    with pytest.raises(InvalidParameterError, match="role name"):
        bi.bi_role_drop(name=bi.GROUP)


def test_a_hostile_password_is_just_a_password(role_name):
    hostile = "x'; DROP TABLE reporting_order; -- \" $$ %s"
    bi.bi_role_create(name=role_name, password=hostile)
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
        cursor.execute("REVOKE SELECT ON reporting.order_status_counts FROM reporting_reader")
    err = StringIO()
    with pytest.raises(CommandError, match="1 grant gap"):
        call_command("bi_role", "check", stdout=StringIO(), stderr=err)
    assert "cannot SELECT on reporting.order_status_counts" in err.getvalue()
    call_command("bi_role", "grants", stdout=StringIO())
    call_command("bi_role", "check", stdout=StringIO())
    with connection.cursor() as cursor:
        cursor.execute("GRANT SELECT ON public.reporting_order TO reporting_reader")
    with pytest.raises(CommandError):
        call_command("bi_role", "check", stdout=StringIO(), stderr=err)
    assert "can SELECT public.reporting_order" in err.getvalue()
    with connection.cursor() as cursor:
        cursor.execute("REVOKE SELECT ON public.reporting_order FROM reporting_reader")
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
