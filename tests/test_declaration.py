"""The declared source (REPORTING_SOURCE): its checks, the SQL generated from it, and its installation."""

from __future__ import annotations

from io import StringIO

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.db import connection

from reporting import checks, source_install, source_sql
from reporting.declaration import DeclarationError, Table, noun, noun_plural, parse, source
from tests.helpers import sync_views

# The example shop's declaration (demo_project/settings.py), which the other tests run on.
EXAMPLE = dict(django_settings.REPORTING_SOURCE)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"latest_by": ["created", "id"]}, "['latest_by'] must be two descending columns"),
        ({"latest_by": ["-created"]}, "['latest_by'] must be two descending columns"),
        ({"statuses": []}, "['statuses'] must be a list of 1 to 100"),
        ({"statuses": ["pending", "none"]}, "cannot hold 'none'"),
        ({"statuses": ["pending", "pending"]}, "holds a value twice"),
        ({"statuses": ["pending", 3]}, "must be all strings (a text column) or all integers"),
        (
            {"statuses": ["pending", True]},
            "must hold non-empty strings of at most 200 characters or integers",
        ),
        ({"statuses": [1, 2, 1]}, "holds a value twice"),
        ({"labels": {"pending": ""}}, "['labels'] must map each status to a label"),
        ({"labels": ["pending"]}, "['labels'] must be a dict"),
        (
            {"history": "reporting.Nothing"},
            "names model 'reporting.Nothing', which app 'reporting' does not have",
        ),
        ({"history": "public."}, "must be a model label or a table"),
        ({"statuses": ["pending", "p" * 201]}, "at most 200 characters"),
        ({"key": ""}, "['key'] must name a column"),
        ({"key": "k" * 64}, "['key'] must name a column"),
        ({"colour": "blue"}, "['colour'] is not an entry of a declaration"),
        ({"parent": None}, "['parent'] is missing"),
        ({"columns": "value"}, "['columns'] must be a list of at most 32 columns"),
        ({"columns": ["note", "note"]}, "['columns'] names a column twice"),
        ({"columns": ["status"]}, "cannot show a column named 'status'"),
        ({"columns": ["status_created"]}, "cannot show a column named 'status_created'"),
        # Every latest row has it: the BI views would have it twice.
        ({"columns": ["status_since"]}, "cannot show a column named 'status_since'"),
        ({"columns": [""]}, "['columns'] must name a column"),
        ({"noun": ""}, "['noun'] must be a word or two"),
        ({"noun": 7}, "['noun'] must be a word or two"),
        ({"noun": " ticket"}, "['noun'] must be a word or two"),
        ({"noun": "tick\net"}, "['noun'] must be a word or two"),
        ({"noun_plural": "s" * 61}, "['noun_plural'] must be a word or two"),
    ],
)
def test_a_malformed_declaration_is_refused_with_the_entry_and_what_it_must_be(change, message):
    declared = {**EXAMPLE, **change}
    with pytest.raises(DeclarationError) as caught:
        parse({k: v for k, v in declared.items() if v is not None})
    assert message in str(caught.value), str(caught.value)


def test_a_capitalised_table_in_a_schema_is_a_table_when_no_app_has_that_label():
    assert parse({**EXAMPLE, "history": "public.Readings"}).history == Table("public", "Readings")
    assert parse(EXAMPLE).history == Table(
        "public", "reporting_example_orderstatus", model="shop.OrderStatus"
    )


@pytest.mark.parametrize(
    ("change", "nouns"),
    [
        ({}, ("order", "orders")),  # the example's shop.Order: its verbose_name
        ({"parent": "auth.User", "parent_created": "date_joined"}, ("user", "users")),
        ({"parent": "public.support_ticket"}, ("support ticket", "support tickets")),
        ({"parent": "public.tickets"}, ("ticket", "tickets")),
        ({"parent": "public.box"}, ("box", "boxes")),
        ({"parent": "public.t1"}, ("key", "keys")),  # no word to take: a neutral one
        ({"noun": "ticket"}, ("ticket", "tickets")),
        ({"noun": "Ticket"}, ("ticket", "tickets")),  # in a sentence, as verbose_name reads
        ({"noun": "SKU"}, ("SKU", "SKUs")),
        ({"noun": "person", "noun_plural": "people"}, ("person", "people")),
        ({"noun_plural": "purchases"}, ("order", "purchases")),
    ],
)
def test_the_nouns_come_from_the_declaration_else_the_parent_model_else_its_table(settings, change, nouns):
    settings.REPORTING_SOURCE = {**EXAMPLE, **change}
    assert (noun(), noun_plural()) == nouns


def test_manage_check_reports_a_malformed_declaration_in_one_message(settings):
    settings.REPORTING_SOURCE = {**EXAMPLE, "latest_by": ["created", "id"]}
    with pytest.raises(SystemCheckError) as caught:
        call_command("check", stdout=StringIO(), stderr=StringIO())
    text = str(caught.value)
    assert "reporting.E001" in text and "['latest_by'] must be two descending columns" in text, text
    assert text.count("reporting.E0") == 1, text


HISTORY_DDL = """
CREATE TABLE decl_keys (id integer PRIMARY KEY, made timestamptz NOT NULL);
CREATE TABLE decl_rows (
    row_id bigint PRIMARY KEY, key_id integer NOT NULL REFERENCES decl_keys, at timestamptz NOT NULL,
    state varchar(16) NOT NULL,
    label integer NOT NULL DEFAULT 0, at_local timestamp NOT NULL DEFAULT now(),
    code char(4) NOT NULL DEFAULT 'ok',
    note text NOT NULL DEFAULT ''
);
CREATE INDEX decl_rows_latest ON decl_rows (key_id, at DESC, row_id DESC);
"""
DECLARED = {
    "history": "public.decl_rows",
    "key": "key_id",
    "latest_by": ["-at", "-row_id"],
    "status": "state",
    "statuses": ["ok", "alarm"],
    "parent": "public.decl_keys",
    "parent_key": "id",
    "parent_created": "made",
}


def _declared_errors() -> list:
    """The errors of a declaration over tables made in the test, which migrate never installed.

    Leaves out that the installed views read other tables or show other columns
    (reporting.W002, W003): true
    of every declaration here, and tested on its own.
    """
    return [e for e in checks.source_errors("default") if e.id not in {"reporting.W002", "reporting.W003"}]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("change", "ddl", "message"),
    [
        ({}, "", None),
        ({"history": "public.no_such_table"}, "", "names public.no_such_table, which does not exist"),
        ({"key": "nope"}, "", "names column 'nope', which public.decl_rows does not have"),
        ({"status": "label"}, "", "holds 'ok', which public.decl_rows.label (integer) can never hold"),
        ({"status": "label", "statuses": [0, 1]}, "", None),
        ({"key": "state"}, "", "names column public.decl_rows.state, of type character varying; it must be"),
        ({"latest_by": ["-at_local", "-row_id"]}, "", "of type timestamp without time zone"),
        ({}, "DROP INDEX decl_rows_latest", "no index of public.decl_rows serves its latest row per key_id"),
        (
            {},
            "DROP INDEX decl_rows_latest; CREATE INDEX ON decl_rows (key_id, at, row_id)",
            "no index of public.decl_rows serves",
        ),
        ({}, "DROP INDEX decl_rows_latest; CREATE INDEX ON decl_rows (key_id DESC, at, row_id)", None),
        (
            {},
            "DROP INDEX decl_rows_latest; CREATE INDEX ON decl_rows (key_id, at DESC, row_id DESC) "
            "WHERE state = 'ok'",
            "no index of public.decl_rows serves",
        ),
        (
            {},
            "ALTER TABLE decl_rows DROP CONSTRAINT decl_rows_pkey",
            "breaks ties with public.decl_rows.row_id, which no unique index covers",
        ),
        ({"parent_created": "id"}, "", "names column public.decl_keys.id, of type integer"),
        (
            {},
            "ALTER TABLE decl_rows ALTER COLUMN key_id DROP NOT NULL",
            "decl_rows.key_id, which may be NULL",
        ),
        ({}, "ALTER TABLE decl_rows ALTER COLUMN at DROP NOT NULL", "decl_rows.at, which may be NULL"),
        ({}, "ALTER TABLE decl_keys ALTER COLUMN made DROP NOT NULL", "decl_keys.made, which may be NULL"),
        (
            {},
            "ALTER TABLE decl_keys DROP CONSTRAINT decl_keys_pkey CASCADE",
            "names public.decl_keys.id, which no unique index covers: a key listed twice",
        ),
        ({"status": "code"}, "", None),
        ({"columns": ["label", "code"]}, "", None),
        ({"key": "note"}, "", "names column public.decl_rows.note, of type text; it must be bigint"),
        (
            {"key": "ref"},
            "ALTER TABLE decl_rows ADD COLUMN ref uuid NOT NULL DEFAULT gen_random_uuid(); "
            "CREATE INDEX ON decl_rows (ref, at DESC, row_id DESC)",
            "decl_rows.ref is uuid, but REPORTING_SOURCE['parent_key'] public.decl_keys.id is integer",
        ),
        ({"columns": ["label", "nope"]}, "", "['columns'] names column 'nope', which public.decl_rows"),
        (
            {},
            "DROP INDEX decl_rows_latest; "
            "CREATE INDEX ON decl_rows (key_id, at DESC NULLS LAST, row_id DESC NULLS LAST)",
            "no index of public.decl_rows serves",
        ),
        (
            {"parent": "public.decl_keys_v"},
            "CREATE VIEW decl_keys_v AS SELECT * FROM decl_keys",
            "is not a plain table",
        ),
        (
            {"history": "public.decl_parts"},
            "CREATE TABLE decl_parts (LIKE decl_rows) PARTITION BY RANGE (at)",
            "names public.decl_parts, which is not a plain table (relkind 'p')",
        ),
    ],
)
def test_check_with_the_database_finds_what_the_declaration_names_but_the_database_lacks(
    settings, change, ddl, message
):
    with connection.cursor() as cursor:
        cursor.execute(HISTORY_DDL + ";" + ddl if ddl else HISTORY_DDL)
    settings.REPORTING_SOURCE = {**DECLARED, **change}
    errors = _declared_errors()
    if message is None:
        assert errors == [], errors
        return
    # Every problem at once: this one among them.
    assert any(message in error.msg for error in errors), errors


@pytest.mark.django_db
def test_a_history_table_swapped_in_under_the_declared_name_is_reported_and_reinstalled():
    """The generated views follow a table by its oid: a rename swap would leave them on the old one."""
    assert checks.source_errors("default") == []
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE reporting_example_orderstatus RENAME TO example_orderstatus_old")
        cursor.execute(
            "CREATE TABLE reporting_example_orderstatus (LIKE example_orderstatus_old INCLUDING ALL)"
        )
        cursor.execute(
            "ALTER TABLE reporting_example_orderstatus "
            "ADD FOREIGN KEY (order_id) REFERENCES reporting_example_order"
        )
    # The view of the shown columns reads the old table as well (W003).
    error, columns = checks.source_errors("default")
    assert (
        "public.reporting_orderstatus reads another table than public.reporting_example_orderstatus"
        in error.msg
    )
    assert columns.id == "reporting.W003"
    # Warnings: an error would stop the migrate that mends them.
    assert error.id == "reporting.W002" and not error.is_serious() and not columns.is_serious()
    assert source_install.source_install(), "the oid is part of the fingerprint: migrate installs again"
    assert checks.source_errors("default") == []
    with connection.cursor() as cursor:
        cursor.execute("SELECT 'public.reporting_orderstatus'::regclass")
        cursor.execute(source_install.INSTALLED_TRIGGERS_SQL)
        tables = {table for _, table in cursor.fetchall()}
    assert tables == {"reporting_example_order", "reporting_example_orderstatus"}, tables


@pytest.mark.django_db
def test_migrate_stops_before_it_changes_anything_when_the_declaration_names_a_missing_column(settings):
    settings.REPORTING_SOURCE = {**EXAMPLE, "status": "state"}
    with pytest.raises(SystemCheckError) as caught:
        call_command(
            "migrate",
            "reporting",
            "zero",
            interactive=False,
            skip_checks=False,
            stdout=StringIO(),
            stderr=StringIO(),
        )
    assert "names column 'state', which public.reporting_example_orderstatus does not have" in str(
        caught.value
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM django_migrations WHERE app = 'reporting'")
        assert cursor.fetchone()[0] > 0, "nothing was unapplied"


@pytest.mark.django_db
def test_the_missing_index_message_gives_the_statement_that_creates_it(settings):
    with connection.cursor() as cursor:
        cursor.execute(HISTORY_DDL + "; DROP INDEX decl_rows_latest")
    settings.REPORTING_SOURCE = DECLARED
    (error,) = checks.source_errors("default")
    assert error.hint is not None and error.hint.endswith(
        'CREATE INDEX CONCURRENTLY ON "public"."decl_rows" ("key_id", "at" DESC, "row_id" DESC)'
    ), error.hint


@pytest.mark.django_db
def test_identifiers_are_quoted_so_a_hostile_table_name_is_only_a_name(settings):
    hostile = 'rows"; DROP TABLE reporting_example_order; --'
    quoted = '"rows""; DROP TABLE reporting_example_order; --"'
    with connection.cursor() as cursor:
        cursor.execute(HISTORY_DDL.replace("decl_rows", quoted).replace(f"{quoted}_latest", "hostile_latest"))
    settings.REPORTING_SOURCE = {**DECLARED, "history": f"public.{hostile}"}
    assert _declared_errors() == []
    statements = [s.as_string(connection.connection) for s in source_sql.source_statements()]
    assert f'FROM "public".{quoted} AS s' in statements[0]
    assert source_install.source_install(force=True)
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('public.reporting_example_order') IS NOT NULL")
        assert cursor.fetchone()[0], "the example's table is still there"
        cursor.execute("INSERT INTO decl_keys VALUES (7, now())")
        cursor.execute(f"INSERT INTO {quoted} VALUES (1, 7, now(), 'ok')")  # noqa: S608
        cursor.execute("SELECT order_ids FROM reporting_orderchange ORDER BY id DESC LIMIT 1")
        assert cursor.fetchone()[0] == [7], "the generated trigger logged the key"


@pytest.mark.django_db
def test_a_hostile_column_to_show_is_only_a_name(settings):
    """A declared column is quoted in the generated view and in the selectors' lookup of it."""
    from reporting.selectors.orders import columns_by_status_id

    hostile = 'note"; DROP TABLE reporting_example_order; --'
    quoted = '"note""; DROP TABLE reporting_example_order; --"'
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE reporting_example_orderstatus ADD COLUMN {quoted} text DEFAULT 'x'")
        cursor.execute("INSERT INTO reporting_example_order (created) VALUES (now()) RETURNING id")
        order_id = cursor.fetchone()[0]
        cursor.execute(
            "INSERT INTO reporting_example_orderstatus (order_id, status, created) "
            "VALUES (%s, 'pending', now()) RETURNING id",
            [order_id],
        )
        status_id = cursor.fetchone()[0]
    settings.REPORTING_SOURCE = {**EXAMPLE, "columns": [hostile]}
    assert _declared_errors() == []
    assert source_install.source_install()
    assert columns_by_status_id([status_id]) == {status_id: {hostile: "x"}}
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('public.reporting_example_order') IS NOT NULL")
        assert cursor.fetchone()[0], "the example's table is still there"


@pytest.mark.django_db
def test_reporting_sql_prints_what_is_installed():
    out = StringIO()
    call_command("reporting_sql", stdout=out)
    text = out.getvalue()
    with connection.cursor() as cursor:
        cursor.execute("SELECT obj_description('public.reporting_orderstatus'::regclass)")
        installed = cursor.fetchone()[0]
        cursor.execute(
            "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal AND tgrelid = "
            "'reporting_example_orderstatus'::regclass"
        )
        triggers = {row[0] for row in cursor.fetchall()}
    with connection.cursor() as cursor:
        checked = source_install.keys_checked(cursor, source())
    assert checked, "the example's history has a foreign key to its orders"
    generated = [
        s.as_string(connection.connection) for s in source_sql.source_statements(keys_checked=checked)
    ]
    core = [
        s.as_string(connection.connection) for s in source_sql.core_statements(source(), keys_checked=checked)
    ]
    # The statements printed are the ones installed: their digest is the views' comment.
    with connection.cursor() as cursor:
        assert source_install.wanted_fingerprint(cursor, source(), core) == installed
    for statement in generated:
        assert statement in text
    assert all(f'CREATE TRIGGER "{name}"' in text for name in triggers), triggers
    assert "CREATE MATERIALIZED VIEW reporting.order_latest_status AS" in text
    # An index names its view as pgviews-redux creates it, schema and name apart (Django's
    # own editor would quote "reporting.order_latest_status" as one name, which no view has).
    assert 'CREATE INDEX "order_latest_status_keyset" ON reporting.order_latest_status ("status"' in text
    assert '"reporting.order_latest_status"' not in text
    assert "CREATE OR REPLACE FUNCTION public.reporting_overlay_fold(" in text


def test_check_names_an_app_the_reports_need_that_is_not_installed():
    from django.test.utils import modify_settings

    assert [e for e in checks.source_check() if e.id == "reporting.E004"] == []
    with modify_settings(INSTALLED_APPS={"remove": ["django.contrib.humanize"]}):
        (error,) = checks.source_check()
    assert error.id == "reporting.E004" and "'django.contrib.humanize' in INSTALLED_APPS" in error.msg


def _needs_full_recompute() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT needs_full_recompute FROM reporting.freshness")
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_changing_only_the_columns_to_show_keeps_the_change_log_and_mends_a_missing_view(settings):
    """The columns to show are not what the change log means: no recompute until the next refresh."""
    from reporting import services

    assert services.views_refresh(force=True).outcome == "ok"
    assert not _needs_full_recompute()
    try:
        settings.REPORTING_SOURCE = {**EXAMPLE, "columns": ["created"]}
        assert source_install.source_install()
        assert not _needs_full_recompute(), "only the shown columns changed"
        with connection.cursor() as cursor:
            cursor.execute("SELECT created FROM public.reporting_exposedcolumns LIMIT 0")
            cursor.execute("DROP VIEW public.reporting_exposedcolumns CASCADE")
        (warning,) = checks.source_errors("default")
        assert warning.id == "reporting.W003" and "reporting_exposedcolumns" in warning.msg
        assert source_install.source_install(), "a missing view is installed again"
        assert checks.source_errors("default") == []
        # Replaced by hand, its comment kept: it reads another table, which is seen and mended.
        with connection.cursor() as cursor:
            cursor.execute("CREATE TABLE decoy (id bigint, created timestamptz)")
            cursor.execute(
                "CREATE OR REPLACE VIEW public.reporting_exposedcolumns AS "
                "SELECT d.id AS status_id, d.created FROM decoy AS d"
            )
        (warning,) = checks.source_errors("default")
        assert warning.id == "reporting.W003"
        assert source_install.source_install()
        assert checks.source_errors("default") == []
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE decoy")
        # Declared but not installed yet: the check says migrate is due.
        settings.REPORTING_SOURCE = {**EXAMPLE, "columns": []}
        (warning,) = checks.source_errors("default")
        assert warning.id == "reporting.W003"
        assert not _needs_full_recompute()
    finally:
        settings.REPORTING_SOURCE = EXAMPLE
        source_install.source_install()
        sync_views()


@pytest.mark.django_db
def test_every_problem_of_a_declaration_is_reported_at_once_with_its_fix(settings):
    """One migrate tells everything: a nullable column, a tie-breaker no unique index covers, no index."""
    with connection.cursor() as cursor:
        cursor.execute(
            HISTORY_DDL
            + "; ALTER TABLE decl_rows ALTER COLUMN state DROP NOT NULL; DROP INDEX decl_rows_latest;"
            + " ALTER TABLE decl_rows DROP CONSTRAINT decl_rows_pkey"
        )
    settings.REPORTING_SOURCE = DECLARED
    messages = [error.msg for error in _declared_errors()]
    assert len(messages) == 3, messages
    assert "decl_rows.state, which may be NULL" in messages[0]
    assert "breaks ties with public.decl_rows.row_id" in messages[1]
    assert "no index of public.decl_rows serves" in messages[2]
    # The setting's own problems come at once too, each with a fix that needs no docs folder.
    settings.REPORTING_SOURCE = {**EXAMPLE, "latest_by": ["created"], "statuses": [], "colour": "blue"}
    settings.REPORTING_SOURCE.pop("parent")
    with pytest.raises(SystemCheckError) as caught:
        call_command("check", stdout=StringIO(), stderr=StringIO())
    text = str(caught.value)
    assert text.count("reporting.E001") == 4, text
    for entry in ("colour", "parent", "latest_by", "statuses"):
        assert f"REPORTING_SOURCE[{entry!r}]" in text, entry
    assert "e.g. 'shop.Order'" in text and "docs/" not in text, text
