"""The app's migration history: one initial migration that makes only the app's own objects.

It replaces the 27 written before the first release: a database with all of them
applied takes it as applied, one with some of them is refused with one line, and
``migrate reporting zero`` and back leaves the database as it was.
"""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.db.migrations.loader import MigrationLoader

from examples.shop import services as shop_services
from examples.shop.models import Order
from reporting import selectors

INITIAL = "0001_squashed_0027_refresh_outcome_cancelled"

# What the app owns in the database: its tables, views, sequences and indexes, its
# functions and triggers (on any table), its schema; and how each looks (columns, definitions).
CATALOG_SQL = """
SELECT 'relation', n.nspname || '.' || c.relname || ' ' || c.relkind::text || ' '
       || coalesce((SELECT string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
                                      || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END, ', '
                                      ORDER BY a.attname)
                    FROM pg_attribute AS a
                    WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '')
       || coalesce(' ' || pg_get_viewdef(c.oid), '')
FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE n.nspname = 'reporting' OR (n.nspname = 'public' AND c.relname LIKE 'reporting%%'
                                  AND c.relname NOT LIKE 'reporting_example%%')
UNION ALL
SELECT 'function', p.oid::regprocedure::text || ' ' || md5(pg_get_functiondef(p.oid))
FROM pg_proc AS p WHERE p.proname LIKE 'reporting%%'
UNION ALL
SELECT 'trigger', t.tgrelid::regclass::text || ' ' || pg_get_triggerdef(t.oid)
FROM pg_trigger AS t WHERE NOT t.tgisinternal
UNION ALL
SELECT 'constraint', c.conrelid::regclass::text || ' ' || pg_get_constraintdef(c.oid)
FROM pg_constraint AS c WHERE c.conrelid::regclass::text LIKE 'reporting%%'
    AND c.conrelid::regclass::text NOT LIKE 'reporting_example%%'
UNION ALL
SELECT 'schema', nspname FROM pg_namespace WHERE nspname = 'reporting'
ORDER BY 1, 2
"""


def catalog() -> list[tuple[str, str]]:
    with connection.cursor() as cursor:
        cursor.execute(CATALOG_SQL)
        return cursor.fetchall()


def migrate(*args: str) -> None:
    call_command("migrate", *args, interactive=False, verbosity=0, stdout=StringIO())


def recorded(names: list[str]) -> None:
    """Make django_migrations say that exactly these reporting migrations are applied."""
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM django_migrations WHERE app = 'reporting'")
        for name in names:
            cursor.execute(
                "INSERT INTO django_migrations (app, name, applied) VALUES ('reporting', %s, now())", [name]
            )


def recorded_now() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM django_migrations WHERE app = 'reporting' ORDER BY name")
        return [name for (name,) in cursor.fetchall()]


def replaced() -> list[str]:
    migration = MigrationLoader(None, ignore_no_migrations=True).disk_migrations[("reporting", INITIAL)]
    return [name for _, name in migration.replaces]


@pytest.mark.django_db
def test_the_initial_migration_replaces_the_27_before_the_release_and_makes_no_example_table():
    assert replaced() == sorted(replaced()) and len(replaced()) == 27
    assert replaced()[0] == "0001_initial" and replaced()[-1] == "0027_refresh_outcome_cancelled"
    sql = StringIO()
    call_command("sqlmigrate", "reporting", INITIAL, stdout=sql)
    assert "CREATE TABLE" in sql.getvalue()
    assert "reporting_example" not in sql.getvalue(), "the example shop's tables are examples.shop's"


@pytest.mark.django_db(transaction=True)
def test_back_to_zero_removes_every_object_of_the_app_and_migrate_makes_them_again(refreshed):
    shop_services.orders_seed(orders=20, seed=4)
    refreshed()
    before = catalog()
    assert any(kind == "trigger" for kind, _ in before), "the declared source's triggers are installed"
    counts = selectors.order_status_counts(strategy="live").counts
    try:
        migrate("reporting", "zero")
        assert catalog() == [], "the app left objects behind"
        # The example shop's data is its own, and writes to it work without the app's triggers.
        assert Order.objects.count() == 20
        shop_services.order_status_record(order_id=Order.objects.earliest("pk").pk, status="cancelled")
    finally:
        migrate()
    assert catalog() == before
    refreshed()
    realtime = selectors.order_status_counts(strategy="realtime").counts
    assert realtime == selectors.order_status_counts(strategy="live").counts
    assert sum(realtime.values()) == sum(counts.values())


@pytest.mark.django_db(transaction=True)
def test_a_database_with_the_whole_old_history_takes_the_initial_migration_as_applied():
    # Django records a replacing migration as the migrations it replaces, and itself.
    before = recorded_now()
    later = [name for name in before if name not in replaced() and name != INITIAL]
    assert before == sorted([*replaced(), INITIAL, *later])
    try:
        recorded([*replaced(), *later])  # a database migrated before the release, then on
        loader = MigrationLoader(connection)
        assert ("reporting", INITIAL) in loader.applied_migrations
        out = StringIO()
        call_command("migrate", "--plan", stdout=out)
        assert "reporting" not in out.getvalue(), out.getvalue()
    finally:
        recorded(before)


@pytest.mark.django_db(transaction=True)
def test_a_database_part_way_through_the_old_history_is_refused_with_one_line():
    before, names = catalog(), recorded_now()
    try:
        recorded(replaced()[:10])
        with pytest.raises(CommandError) as refused:
            migrate()
        message = str(refused.value)
        assert "\n" not in message
        assert "10 of the reporting migrations before 0.1.0 applied (the last: 0010_overlay)" in message
        assert catalog() == before, "nothing changed"
    finally:
        recorded(names)
