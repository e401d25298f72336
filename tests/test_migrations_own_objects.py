"""Migrations touch only the app's own objects: a project's view or foreign key over them stops a drop."""

from __future__ import annotations

import importlib

import pytest
from django.db import connection

EXAMPLE_APP = importlib.import_module("reporting.migrations.0017_example_shop_app")
# In a project without the example, the views generated from its declaration read its own tables.
GENERATED_VIEWS_DROP = (
    "DROP VIEW public.reporting_orderstatus, public.reporting_order, public.reporting_exposedcolumns CASCADE"
)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "dependent",
    [
        "CREATE VIEW my_orders AS SELECT id FROM reporting_example_order",
        "CREATE TABLE my_invoice (order_id bigint REFERENCES reporting_example_order (id))",
    ],
)
def test_the_example_tables_are_kept_with_what_depends_on_them(dependent, capsys):
    with connection.cursor() as cursor:
        # Nothing of the reporting machinery reads them in such a project: point it away.
        cursor.execute(GENERATED_VIEWS_DROP)
        cursor.execute("TRUNCATE reporting_example_orderstatus, reporting_example_order")
        cursor.execute(dependent)
        EXAMPLE_APP.drop_example_tables(cursor)
        cursor.execute("SELECT to_regclass('reporting_example_order') IS NOT NULL")
        assert cursor.fetchone()[0], "the table was dropped with the project's object"
        cursor.execute("SELECT to_regclass('my_orders') IS NOT NULL OR to_regclass('my_invoice') IS NOT NULL")
        assert cursor.fetchone()[0]
    assert "Kept the empty tables" in capsys.readouterr().err


@pytest.mark.django_db
def test_the_example_tables_go_when_nothing_else_needs_them():
    with connection.cursor() as cursor:
        cursor.execute(GENERATED_VIEWS_DROP)
        cursor.execute("TRUNCATE reporting_example_orderstatus, reporting_example_order")
        EXAMPLE_APP.drop_example_tables(cursor)
        cursor.execute(
            "SELECT to_regclass('reporting_example_order'), to_regclass('reporting_example_orderstatus')"
        )
        assert cursor.fetchone() == (None, None)
