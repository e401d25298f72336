from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.apps import apps
from django.db import connection
from django_pgviews import view as pg

from reporting import services
from reporting.matviews import OrderLatestStatusView
from reporting.read_models import KeyRow, OrderLatestStatus
from reporting.source_sql import FUNCTIONS
from reporting.sql_files import FROZEN_SQL_DIR, VIEWS_SQL_DIR, view_sql
from tests.factories import EPOCH, orders_create, statuses_create
from tests.helpers import raw_connect, subprocess_env, sync_views

MANAGE = str(Path(__file__).resolve().parent.parent / "manage.py")


def _fetchall(sql: str, params=None) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


@pytest.mark.django_db
def test_the_view_is_a_materialized_view_in_the_reporting_schema():
    rows = _fetchall(
        "SELECT definition FROM pg_matviews "
        "WHERE schemaname = 'reporting' AND matviewname = 'order_latest_status'"
    )
    assert len(rows) == 1, "reporting.order_latest_status is missing from pg_matviews"
    # PostgreSQL 15 deparses the key qualified by its alias ("DISTINCT ON (h.order_id)"), 18 bare.
    assert re.search(r"DISTINCT ON \((\w+\.)?order_id\)", rows[0][0]), rows[0][0]
    columns = _fetchall(
        "SELECT attname FROM pg_attribute WHERE attrelid = 'reporting.order_latest_status'::regclass "
        "AND attnum > 0 ORDER BY attnum"
    )
    assert [c[0] for c in columns] == ["order_id", "status_id", "status", "status_created", "status_since"]


@pytest.mark.django_db
def test_the_view_has_a_unique_index_on_order_id_and_a_keyset_index():
    indexes = dict(
        _fetchall(
            "SELECT indexname, indexdef FROM pg_indexes "
            "WHERE schemaname = 'reporting' AND tablename = 'order_latest_status'"
        )
    )
    unique = [d for d in indexes.values() if d.startswith("CREATE UNIQUE INDEX") and d.endswith("(order_id)")]
    assert len(unique) == 1, f"no unique index on order_id: {indexes}"
    assert (
        "(status, status_created DESC, order_id DESC) INCLUDE (status_id, status_since)"
        in indexes["order_latest_status_keyset"]
    )


@pytest.mark.django_db
def test_the_source_table_has_one_composite_index_and_no_redundant_ones():
    indexes = dict(
        _fetchall(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'reporting_example_orderstatus'"
        )
    )
    assert set(indexes) == {"reporting_example_orderstatus_pkey", "orderstatus_order_latest_idx"}, indexes
    assert "(order_id, created DESC, id DESC)" in indexes["orderstatus_order_latest_idx"]


@pytest.mark.django_db(transaction=True)
def test_a_concurrent_refresh_works_outside_a_transaction():
    (order,) = orders_create(1)
    statuses_create([(order, EPOCH, "pending")])
    OrderLatestStatusView.refresh(concurrently=True, strict=True)
    assert _fetchall("SELECT order_id, status FROM reporting.order_latest_status") == [(order, "pending")]
    statuses_create([(order, EPOCH.replace(hour=1), "cancelled")])
    services.views_refresh(concurrently=True)
    assert _fetchall("SELECT order_id, status FROM reporting.order_latest_status") == [(order, "cancelled")]


@pytest.mark.django_db
def test_the_orm_goes_from_a_key_to_its_latest_status_and_back(refreshed):
    """KeyRow maps the keys of the declared source (here the shop's orders), related both ways."""
    with_status, without_status = orders_create(2)
    statuses_create([(with_status, EPOCH, "pending"), (with_status, EPOCH.replace(hour=2), "complete")])
    refreshed()
    order = KeyRow.objects.select_related("latest_status").get(pk=with_status)
    assert order.latest_status.status == "complete"
    assert order.latest_status.status_created == EPOCH.replace(hour=2)
    assert OrderLatestStatus.objects.get(order_id=with_status).order == order
    assert list(KeyRow.objects.filter(latest_status__status="complete").values_list("pk", flat=True)) == [
        with_status
    ]
    assert list(KeyRow.objects.filter(latest_status__isnull=True).values_list("pk", flat=True)) == [
        without_status
    ]
    with pytest.raises(OrderLatestStatus.DoesNotExist):
        KeyRow.objects.get(pk=without_status).latest_status  # noqa: B018


@pytest.mark.django_db
def test_a_new_version_of_the_sql_rebuilds_the_view_on_sync(monkeypatch, refreshed):
    """pgviews-redux drops and recreates a materialized view whose SQL changed (docs/changing-views.md)."""
    (order,) = orders_create(1)
    statuses_create([(order, EPOCH, "pending")])
    refreshed()
    oid_before = _fetchall("SELECT 'reporting.order_latest_status'::regclass::oid")[0][0]

    sync_views()
    assert _fetchall("SELECT 'reporting.order_latest_status'::regclass::oid")[0][0] == oid_before, (
        "unchanged SQL must leave the view alone"
    )

    changed = view_sql("order_latest_status").replace("AS s\n", "AS s WHERE s.id > 0\n")
    monkeypatch.setattr(OrderLatestStatusView, "sql", changed)
    sync_views()
    assert _fetchall("SELECT 'reporting.order_latest_status'::regclass::oid")[0][0] != oid_before
    # Rebuilt with its indexes and its data.
    assert len(_fetchall("SELECT 1 FROM pg_indexes WHERE tablename = 'order_latest_status'")) == 2
    assert _fetchall("SELECT order_id, status FROM reporting.order_latest_status") == [(order, "pending")]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_another_schema_name_is_used_everywhere():
    """REPORTING_SCHEMA puts every view in another schema; the SQL follows it."""
    name = f"{connection.settings_dict['NAME']}_schema"
    with raw_connect(dbname="postgres") as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'CREATE DATABASE "{name}"')
    env = subprocess_env() | {"REPORTING_SCHEMA": "analytics"}
    if env.get("DATABASE_URL"):
        env["DATABASE_URL"] = urlunsplit(urlsplit(env["DATABASE_URL"])._replace(path=f"/{name}"))
    else:
        env["REPORTING_EMBEDDED_DB_NAME"] = name

    def manage(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, MANAGE, *args], env=env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    try:
        manage("migrate", "--verbosity", "0")
        manage("seed_orders", "--orders", "40")
        assert "ok:" in manage("refresh_views")
        manage(
            "shell",
            "-c",
            "from examples.shop import services as s; s.order_status_record(order_id=1, status='cancelled')",
        )
        counts = manage(
            "shell",
            "-c",
            "from reporting import selectors; "
            "print(selectors.order_status_counts(strategy='realtime').as_dict() == "
            "selectors.order_status_counts(strategy='live').as_dict())",
        )
        assert counts.strip().endswith("True")
        with raw_connect(dbname=name) as conn:
            schemas = conn.execute(
                "SELECT DISTINCT schemaname FROM pg_views WHERE viewname = 'order_latest_status_live' "
                "UNION SELECT DISTINCT schemaname FROM pg_matviews WHERE matviewname = 'order_latest_status'"
            ).fetchall()
            assert schemas == [("analytics",)]
            assert conn.execute("SELECT to_regnamespace('reporting')").fetchone() == (None,)
    finally:
        with raw_connect(dbname="postgres") as admin:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", [name])
            admin.execute(f'DROP DATABASE IF EXISTS "{name}"')


def test_views_sql_holds_one_current_file_per_object_and_each_function_is_migrated():
    """views_sql/ is edited in place; what migrations deploy is frozen in reporting/migrations/sql/.

    Every file of views_sql/ is read (by a view's model or as a function), and each
    function's newest frozen copy is its current file: an edit of a function
    without the migration that deploys it fails here.
    """
    files = {p.stem for p in VIEWS_SQL_DIR.glob("*.sql")}
    assert not {name for name in files if re.search(r"_v\d+$", name)}, "one unversioned file per object"
    read_by_views = {
        name
        for model in apps.get_models()
        if isinstance(model, type) and issubclass(model, pg.View)
        for name in files
        if getattr(model, "sql", None) == view_sql(name)
    }
    assert files == read_by_views | set(FUNCTIONS), (
        f"read by nothing: {files - read_by_views - set(FUNCTIONS)}"
    )
    for name in FUNCTIONS:
        versions = [p for p in FROZEN_SQL_DIR.glob(f"{name}_v*.sql") if re.fullmatch(rf"{name}_v\d+", p.stem)]
        newest = max(versions, key=lambda p: int(p.stem.rpartition("_v")[2]))
        assert newest.read_text() == (VIEWS_SQL_DIR / f"{name}.sql").read_text(), (
            f"views_sql/{name}.sql differs from {newest.name}: freeze it as the next version and deploy it "
            "in a migration (docs/architecture.md)"
        )
    # And every frozen file is one a migration deploys: no version that nothing reads.
    migrations = "".join(p.read_text() for p in FROZEN_SQL_DIR.parent.glob("0*.py"))
    unread = {p.name for p in FROZEN_SQL_DIR.glob("*.sql") if f'"{p.stem}"' not in migrations}
    assert not unread, f"deployed by no migration: {unread}"
