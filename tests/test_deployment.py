"""The servers shops deploy on: JIT-enabled PostgreSQL, PgBouncer in transaction mode.

Most of these run on any server: they assert what the selectors send and keep
(``SHOW jit``, ``pg_cursors``, session settings). Two need what the embedded
server lacks, and say so when skipped: a server with JIT (``pg_jit_available()``),
and a run whose ``DATABASE_URL`` is a PgBouncer in transaction mode
(``DATABASE_DISABLE_SERVER_SIDE_CURSORS=1``). ``.ci/postgres-matrix`` runs this
module on Debian's PostgreSQL 15 with JIT on, directly and through PgBouncer.
"""

from __future__ import annotations

import json

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DEFAULT_DB_ALIAS, connection
from django.db.utils import DatabaseError, OperationalError
from psycopg.pq import TransactionStatus

from examples.shop import services as shop_services
from reporting import conf, selectors, services
from reporting.selectors import sql as raw
from reporting.selectors.orders import REALTIME_COUNTS_SQL
from reporting.sql_files import in_schema
from tests.factories import EPOCH

pytestmark = pytest.mark.django_db(transaction=True)

# The run goes through a transaction pooler: DATABASE_URL is PgBouncer's.
THROUGH_POOLER = bool(settings.DATABASES[DEFAULT_DB_ALIAS].get("DISABLE_SERVER_SIDE_CURSORS"))


@pytest.fixture
def pooled(settings, monkeypatch):
    """The default database declared as behind a transaction pooler, as Django's switch says."""
    monkeypatch.setitem(settings.DATABASES[DEFAULT_DB_ALIAS], "DISABLE_SERVER_SIDE_CURSORS", True)


@pytest.fixture
def data():
    shop_services.orders_seed(orders=60, seed=3, until=EPOCH)
    services.views_refresh(force=True)


def session_setting(name: str) -> str:
    """A setting of the session, read outside any read transaction."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting(%s)", [name])
        return cursor.fetchone()[0]


def jit_server() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_jit_available()")
        return bool(cursor.fetchone()[0])


def has_jit(plan: list[tuple]) -> bool:
    """Whether an ``EXPLAIN (ANALYZE, FORMAT JSON)`` result compiled anything."""
    document = plan[0][0]
    return "JIT" in (json.loads(document) if isinstance(document, str) else document)[0]


# --- JIT ---------------------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=False)
def test_selector_reads_run_with_jit_off_and_leave_the_session_as_it_was():
    with connection.cursor() as cursor:
        cursor.execute("SET jit = on")
    assert raw.rows("SHOW jit", binary=False) == [("off",)]
    with raw.cursor() as cursor:
        cursor.execute("SHOW jit")
        assert cursor.fetchone() == ("off",)
    assert [row for row in raw.stream("SELECT current_setting('jit')", {}, 10)] == [("off",)]
    # Inside the test's transaction the setting is transaction-local: gone with it,
    # never the session's default.
    with connection.cursor() as cursor:
        cursor.execute("SELECT setting, reset_val FROM pg_settings WHERE name = 'jit'")
        assert cursor.fetchone() == ("off", "on"), "SET LOCAL, not SET"


def test_outside_a_transaction_each_read_is_a_transaction_of_its_own(data):
    with connection.cursor() as cursor:
        cursor.execute("SET jit = on")
    for strategy in ("snapshot", "realtime", "live"):
        selectors.order_status_counts(strategy=strategy)
        selectors.order_list_by_status(status="cancelled", strategy=strategy)
        selectors.order_daily_counts(days=3, strategy=strategy)
        selectors.order_transitions_daily(days=3, strategy=strategy)
    selectors.orders_stuck_pending()
    assert connection.connection.info.transaction_status == TransactionStatus.IDLE, "committed"
    assert session_setting("jit") == "on", "the session's own setting is untouched"


@pytest.mark.django_db(transaction=False)
def test_on_a_jit_server_the_realtime_counts_compile_nothing(refreshed):
    """With every query over jit_above_cost, the selectors' read still compiles nothing."""
    if not jit_server():
        pytest.skip("this server has no JIT (the embedded one); .ci/postgres-matrix runs it on PostgreSQL 15")
    shop_services.orders_seed(orders=30, seed=3, until=EPOCH)
    refreshed()
    explain = "EXPLAIN (ANALYZE, FORMAT JSON) " + REALTIME_COUNTS_SQL
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL jit = on")
        cursor.execute("SET LOCAL jit_above_cost = 0")
        cursor.execute(explain)
        assert has_jit(cursor.fetchall()), "control: this server compiles the query when allowed to"
    assert not has_jit(raw.rows(explain, binary=False))
    bi_counts = in_schema("EXPLAIN (ANALYZE, FORMAT JSON) SELECT * FROM reporting.order_status_counts_live")
    with raw.cursor() as cursor:
        cursor.execute(bi_counts)
        assert not has_jit(cursor.fetchall())


def test_a_fold_runs_with_jit_off(data, monkeypatch):
    """The fold's transaction turns JIT off before its function plans anything."""
    from reporting.services import fold

    # The fold's own statement, with the setting it ran under in place of its outcome.
    spy = "SELECT generation, orders, changes, overlay_orders, current_setting('jit') FROM ({}) AS f"
    monkeypatch.setattr(fold, "FOLD_SQL", spy.format(fold.FOLD_SQL))
    with connection.cursor() as cursor:
        cursor.execute("SET jit = on")
    assert services.overlay_fold().outcome == "off"
    assert session_setting("jit") == "on"


# --- Behind a transaction pooler (the setting) ------------------------------------------------------------


def test_behind_a_pooler_prepared_reads_are_off_unless_asked_for(settings, pooled):
    assert not conf.prepared_reads()
    settings.REPORTING_PREPARED_READS = "1"  # PgBouncer 1.21+ with max_prepared_statements
    assert conf.prepared_reads()


def test_behind_a_pooler_the_hot_reads_prepare_nothing(pooled, data):
    connection.close()
    with connection.cursor() as cursor:
        cursor.execute("SELECT clock_timestamp()")
        (start,) = cursor.fetchone()
    for _ in range(raw.PREPARE_THRESHOLD + 3):
        selectors.order_list_by_status(status="cancelled", strategy="realtime")
        selectors.order_status_counts(strategy="realtime")
    assert connection.connection.prepare_threshold is None
    # Behind a real pooler the server session may be one an earlier client left a
    # statement in: only what was prepared since this test began counts.
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_prepared_statements WHERE prepare_time >= %s", [start])
        assert cursor.fetchone()[0] == 0


def test_behind_a_pooler_the_read_timeout_stays_in_the_read_transactions(pooled, data):
    """A session setting would stay with a server session that another client gets next."""
    with selectors.read_statement_timeout(0.3):
        assert session_setting("statement_timeout") == "0"
        assert raw.rows("SHOW statement_timeout", binary=False) == [("300ms",)]
        with pytest.raises(OperationalError, match="statement timeout"):
            raw.rows("SELECT pg_sleep(2)")
        # Also the cursor-based reads and the streams.
        with raw.cursor() as cursor:
            cursor.execute("SHOW statement_timeout")
            assert cursor.fetchone() == ("300ms",)
        assert list(raw.stream("SELECT current_setting('statement_timeout')", {}, 10)) == [("300ms",)]
    assert session_setting("statement_timeout") == "0"
    assert raw.rows("SHOW statement_timeout", binary=False) == [("0",)]


def test_a_stream_holds_no_cursor_past_its_transaction(data):
    """The CSV export's cursor lives in one transaction: nothing WITH HOLD, which a pooler would lose."""
    rows = selectors.order_iter_by_status(status="cancelled", strategy="realtime", chunk_size=2)
    next(rows)
    pg = connection.connection
    assert pg.info.transaction_status == TransactionStatus.INTRANS
    with connection.cursor() as cursor:
        cursor.execute("SELECT is_holdable FROM pg_cursors WHERE name LIKE 'reporting_stream_%%'")
        assert cursor.fetchall() == [(False,)]
    rest = list(rows)
    assert pg.info.transaction_status == TransactionStatus.IDLE, "committed at the last row"
    assert 1 + len(rest) == selectors.order_status_counts(strategy="realtime").counts["cancelled"]
    # A stream abandoned half-way (a client that hung up) ends its transaction too.
    rows = selectors.order_iter_by_status(status="cancelled", strategy="realtime", chunk_size=2)
    next(rows)
    rows.close()  # type: ignore[attr-defined]  # a generator
    assert pg.info.transaction_status == TransactionStatus.IDLE


def test_a_failed_read_rolls_its_transaction_back(data):
    with pytest.raises(DatabaseError):
        raw.rows("SELECT 1 / 0")
    assert connection.connection.info.transaction_status == TransactionStatus.IDLE
    assert selectors.order_status_counts(strategy="realtime").total == 60


def test_the_scheduler_refuses_a_transaction_pooler_with_one_line(pooled):
    with pytest.raises(CommandError) as refused:
        call_command("run_scheduler", "--no-startup-refresh")
    message = str(refused.value)
    assert "\n" not in message
    assert "run_scheduler needs a direct connection to PostgreSQL" in message


# --- Through a real PgBouncer in transaction mode ----------------------------------------------------------

through_pooler = pytest.mark.skipif(
    not THROUGH_POOLER,
    reason="needs DATABASE_URL on PgBouncer in transaction mode and DATABASE_DISABLE_SERVER_SIDE_CURSORS=1 "
    "(.ci/postgres-matrix)",
)


@through_pooler
def test_the_pooler_gives_one_client_several_server_sessions():
    """The premise of the tests below: consecutive transactions land in different sessions."""
    pids = set()
    for _ in range(12):
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            pids.add(cursor.fetchone()[0])
    assert len(pids) > 1, "the pooler must be in transaction mode with several server sessions"


@through_pooler
def test_through_the_pooler_every_read_works_and_stays_exact(data, settings):
    for round_ in range(2 * raw.PREPARE_THRESHOLD):
        if round_ % 3 == 0:
            shop_services.order_status_record(order_id=shop_services.order_create().id, status="cancelled")
            services.overlay_fold()
        realtime = selectors.order_status_counts(strategy="realtime")
        assert realtime.counts == selectors.order_status_counts(strategy="live").counts
        page = selectors.order_list_by_status(status="cancelled", strategy="realtime")
        assert page.rows == selectors.order_list_by_status(status="cancelled", strategy="live").rows
        streamed = list(selectors.order_iter_by_status(status="cancelled", strategy="realtime", chunk_size=7))
        assert len(streamed) == realtime.counts["cancelled"]
        selectors.order_daily_counts(days=3, strategy="realtime")
    # The control: prepared reads, which this pooler cannot keep, fail here.
    settings.REPORTING_PREPARED_READS = "1"
    connection.close()
    try:
        with pytest.raises(DatabaseError, match="prepared statement"):
            for round_ in range(4 * raw.PREPARE_THRESHOLD):
                selectors.order_status_counts(strategy="realtime")
                # A pool that hands out its sessions in turn would give a read of an
                # even number of transactions the same session each time: shift it.
                with connection.cursor() as cursor:
                    for _ in range(round_ % 3):
                        cursor.execute("SELECT 1")
    finally:
        connection.close()
        # What the control prepared stays in the pool's server sessions (the pooler
        # resets nothing in transaction mode): clear it on every session we reach,
        # for the tests and runs after this one.
        with connection.cursor() as cursor:
            for _ in range(30):
                cursor.execute("DEALLOCATE ALL")
