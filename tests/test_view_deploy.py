"""A changed view is built beside the current one and swapped in: readers never fail, and
real-time reads stay exact without a full recompute (reporting.services.view_deploy)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection, connections

from examples.shop import services as shop_services
from reporting import matviews, selectors, services
from reporting.choices import RefreshTrigger
from reporting.models import RefreshRun
from reporting.services.view_deploy import view_changes
from tests.helpers import raw_connect

pytestmark = pytest.mark.django_db(transaction=True)

LATEST = matviews.OrderLatestStatusView
# A change of the SQL that changes no answer: PostgreSQL keeps the condition in
# the view's definition, so pgviews-redux (and the deploy) see a changed view.
CHANGED = f"SELECT * FROM ({LATEST.sql}) AS changed WHERE changed.order_id IS NOT NULL"  # noqa: S608

BI_READS = [
    "SELECT order_id FROM reporting.order_latest_status_live WHERE status = 'cancelled' "
    "ORDER BY status_created DESC, order_id DESC LIMIT 10",
    "SELECT status, orders FROM reporting.order_status_counts_live",
    "SELECT * FROM reporting.freshness",
]


def migrate() -> str:
    out = StringIO()
    call_command("migrate", interactive=False, verbosity=1, stdout=out)
    return out.getvalue()


def state() -> tuple[bool, int]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT needs_full_recompute, generation FROM public.reporting_snapshot_state")
        return cursor.fetchone()


@pytest.fixture
def changed_view(monkeypatch) -> Iterator[None]:
    """The order_latest_status view's SQL changed, as a deploy would bring it; put back after."""
    monkeypatch.setattr(LATEST, "sql", CHANGED)
    try:
        yield
    finally:
        monkeypatch.undo()
        migrate()
        assert not view_changes()


@pytest.fixture
def shop() -> None:
    shop_services.orders_seed(orders=300, seed=11)
    assert services.views_refresh(force=True).outcome == "ok"
    for order_id in range(1, 40):
        shop_services.order_status_record(order_id=order_id, status="cancelled")
    services.overlay_fold()


class Readers:
    """Threads reading the selectors and the BI views, each on its own connection, until stopped."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.reads = 0
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.selectors), threading.Thread(target=self.bi)]

    def __enter__(self) -> Readers:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(30)

    def _loop(self, read) -> None:
        try:
            while not self.stop.is_set():
                try:
                    read()
                    self.reads += 1
                except Exception as exc:
                    self.errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            connections.close_all()

    def selectors(self) -> None:
        def read() -> None:
            selectors.order_list_by_status(status="cancelled", strategy="realtime", limit=10)
            selectors.order_status_counts(strategy="realtime")
            selectors.order_status_counts(strategy="snapshot")

        self._loop(read)

    def bi(self) -> None:
        def read() -> None:
            with connection.cursor() as cursor:
                for sql in BI_READS:
                    cursor.execute(sql)
                    cursor.fetchall()

        self._loop(read)


def test_a_changed_view_is_swapped_in_while_readers_read_and_realtime_stays_exact(shop, changed_view):
    assert view_changes().materialized == [LATEST._meta.db_table]
    assert state()[0] is False
    tail_before = selectors.order_status_counts(strategy="realtime")
    with Readers() as readers:
        before = readers.reads
        output = migrate()
        during = readers.reads - before
    assert readers.errors == [], readers.errors[:5]
    assert during > 0, "the readers read while migrate ran"
    assert "building every materialized view beside the current ones, then swapping them in" in output
    assert "Rebuilt and swapped in" in output
    with connection.cursor() as cursor:
        cursor.execute("SELECT definition FROM pg_matviews WHERE matviewname = 'order_latest_status'")
        assert "IS NOT NULL" in cursor.fetchone()[0]
    assert not view_changes(), "pgviews-redux's sync found nothing more to do"
    # A generation of its own, which the overlay carries: no full recompute.
    run = RefreshRun.objects.filter(outcome="ok").latest("id")
    assert run.trigger == RefreshTrigger.DEPLOY
    needs_full_recompute, generation = state()
    assert (needs_full_recompute, generation) == (False, run.pk)
    realtime = selectors.order_status_counts(strategy="realtime")
    assert realtime.counts == selectors.order_status_counts(strategy="live").counts == tail_before.counts
    page = selectors.order_list_by_status(status="cancelled", strategy="realtime")
    assert page.rows == selectors.order_list_by_status(status="cancelled", strategy="live").rows
    # The next migrate finds nothing changed and says nothing of the views.
    assert "Reporting views changed" not in migrate()


def test_a_projects_own_view_over_a_reporting_view_survives_the_swap_with_its_comment_and_grants(
    shop, changed_view
):
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE VIEW public.my_cancelled AS SELECT order_id FROM reporting.order_latest_status "
            "WHERE status = 'cancelled'"
        )
        cursor.execute("COMMENT ON VIEW public.my_cancelled IS 'for the finance team'")
        cursor.execute("GRANT SELECT ON public.my_cancelled TO PUBLIC")
        cursor.execute(
            "ALTER VIEW public.my_cancelled SET (security_barrier = true, security_invoker = true)"
        )
        cursor.execute("COMMENT ON COLUMN public.my_cancelled.order_id IS 'the order'")
        cursor.execute("GRANT UPDATE (order_id) ON public.my_cancelled TO PUBLIC")
        # And a view over that view.
        cursor.execute(
            "CREATE VIEW public.my_cancelled_count AS SELECT count(*) AS n FROM public.my_cancelled"
        )
    try:
        migrate()
        with connection.cursor() as cursor:
            # The rebuilt view holds the changes since the last refresh too.
            cursor.execute(
                "SELECT (SELECT count(*) FROM public.my_cancelled), "
                "(SELECT count(*) FROM reporting.order_latest_status WHERE status = 'cancelled')"
            )
            mine, theirs = cursor.fetchone()
            assert mine == theirs > 0
            cursor.execute(
                "SELECT obj_description('public.my_cancelled'::regclass, 'pg_class'), "
                "has_table_privilege('public', 'public.my_cancelled', 'SELECT')"
            )
            assert cursor.fetchone() == ("for the finance team", True)
            cursor.execute(
                "SELECT reloptions, col_description('public.my_cancelled'::regclass, 1), "
                "has_column_privilege('public', 'public.my_cancelled', 'order_id', 'UPDATE') "
                "FROM pg_class WHERE oid = 'public.my_cancelled'::regclass"
            )
            assert cursor.fetchone() == (
                ["security_barrier=true", "security_invoker=true"],
                "the order",
                True,
            )
            cursor.execute("SELECT n FROM public.my_cancelled_count")
            assert cursor.fetchone() == (theirs,)
            # It reads the new view, not a leftover.
            cursor.execute(
                "SELECT DISTINCT d.refobjid::regclass::text FROM pg_depend AS d "
                "JOIN pg_rewrite AS r ON r.oid = d.objid "
                "WHERE r.ev_class = 'public.my_cancelled'::regclass AND d.refobjid <> r.ev_class"
            )
            assert cursor.fetchall() == [("reporting.order_latest_status",)]
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP VIEW IF EXISTS public.my_cancelled CASCADE")


def test_a_deploy_that_cannot_build_the_new_view_fails_migrate_and_keeps_the_current_views(shop, monkeypatch):
    monkeypatch.setattr(LATEST, "sql", f"SELECT * FROM ({LATEST.sql}) AS changed WHERE 1 / 0 = 1")  # noqa: S608
    generation = state()[1]
    try:
        with pytest.raises(Exception, match="division by zero"):
            migrate()
        assert state() == (False, generation), "the current views and their generation stay"
        assert selectors.order_status_counts(strategy="realtime").counts == (
            selectors.order_status_counts(strategy="live").counts
        )
    finally:
        monkeypatch.undo()
        migrate()


def test_a_reader_that_keeps_its_transaction_open_fails_the_deploy_not_the_readers(
    shop, changed_view, settings
):
    """The swap waits for its locks in short tries, as long as the refresh's lock timeout, then
    gives up: migrate fails, and the current views stay, readable by everyone meanwhile."""
    settings.REPORTING_REFRESH_LOCK_TIMEOUT = 1
    generation = state()[1]
    holder = raw_connect(autocommit=False)
    try:
        holder.execute("SELECT count(*) FROM reporting.order_latest_status_live")
        with Readers() as readers, pytest.raises(Exception, match="lock timeout"):
            migrate()
        assert readers.errors == [] and readers.reads > 0
    finally:
        holder.rollback()
        holder.close()
    assert state() == (False, generation)
    assert view_changes().materialized == [LATEST._meta.db_table], "still to deploy"


def test_migrate_ends_with_a_refresh_when_the_views_need_a_full_recompute(shop):
    """What a declaration installed again leaves (a truncate in the change log): migrate refreshes."""
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO reporting_orderchange (order_ids, source) VALUES (NULL, 'truncate')")
    assert state()[0] is True
    output = migrate()
    assert "refreshing the views now" in output
    run = RefreshRun.objects.filter(outcome="ok").latest("id")
    assert run.trigger == RefreshTrigger.DEPLOY
    assert state() == (False, run.pk)
    assert selectors.order_status_counts(strategy="realtime").counts == (
        selectors.order_status_counts(strategy="live").counts
    )
    assert "refreshing the views now" not in migrate(), "nothing to catch up the next time"


@pytest.mark.parametrize(
    ("make", "named", "drop"),
    [
        (
            "CREATE FUNCTION public.my_rows() RETURNS SETOF reporting.order_latest_status LANGUAGE sql "
            "AS 'SELECT * FROM reporting.order_latest_status'",
            "function my_rows()",
            "DROP FUNCTION public.my_rows()",
        ),
        (
            "CREATE INDEX my_index ON reporting.order_latest_status (status_created)",
            "index reporting.my_index",
            "DROP INDEX reporting.my_index",
        ),
        (
            "CREATE MATERIALIZED VIEW public.my_matview AS "
            "SELECT order_id FROM reporting.order_latest_status",
            "materialized view public.my_matview",
            "DROP MATERIALIZED VIEW public.my_matview",
        ),
    ],
)
def test_what_no_swap_can_carry_over_is_named_and_nothing_is_dropped(shop, changed_view, make, named, drop):
    with connection.cursor() as cursor:
        cursor.execute(make)
    generation = state()[1]
    try:
        with pytest.raises(Exception, match="cannot be swapped") as refused:
            migrate()
        assert named in str(refused.value)
        assert state() == (False, generation)
        assert not RefreshRun.objects.filter(outcome="running").exists()
        with connection.cursor() as cursor:
            cursor.execute("SELECT to_regnamespace('reporting__next')")
            assert cursor.fetchone() == (None,)
    finally:
        with connection.cursor() as cursor:
            cursor.execute(drop)


def test_a_view_made_over_the_views_while_they_are_built_is_carried_over(shop, changed_view, monkeypatch):
    from reporting.services import view_deploy

    build = view_deploy.views_build_beside

    def build_then_someone_makes_a_view(*args):
        rows = build(*args)
        with raw_connect() as other:
            other.execute("CREATE VIEW public.late AS SELECT order_id FROM reporting.order_latest_status")
        return rows

    monkeypatch.setattr(view_deploy, "views_build_beside", build_then_someone_makes_a_view)
    try:
        migrate()
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) > 0 FROM public.late")
            assert cursor.fetchone() == (True,)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP VIEW IF EXISTS public.late")


def test_a_schema_of_the_shadows_name_is_not_ours_to_drop(shop, changed_view):
    with connection.cursor() as cursor:
        cursor.execute("CREATE SCHEMA reporting__next")
        cursor.execute("CREATE TABLE reporting__next.precious AS SELECT 1 AS x")
    try:
        with pytest.raises(Exception, match="already exists"):
            migrate()
        with connection.cursor() as cursor:
            cursor.execute("SELECT x FROM reporting__next.precious")
            assert cursor.fetchone() == (1,)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP SCHEMA reporting__next CASCADE")


def test_a_deploy_waits_for_a_running_refresh(shop, changed_view):
    holder = raw_connect(autocommit=False)
    holder.execute("LOCK TABLE reporting_refreshlock IN EXCLUSIVE MODE")
    release = threading.Timer(2.0, holder.rollback)
    release.start()
    try:
        output = migrate()
    finally:
        release.join()
        holder.close()
    assert "Waiting for the refresh lock" in output
    assert "Rebuilt and swapped in" in output
