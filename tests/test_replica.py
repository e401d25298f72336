"""Reporting reads from a real hot standby, started with pg_basebackup -R."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import pytest
from django.db import DatabaseError, connection, connections

from examples.shop import services as shop_services
from examples.shop.models import Status
from reporting import embedded_db, selectors, services
from tests.brute_force import brute_force_latest
from tests.factories import EPOCH, all_status_rows, brute_force_lists
from tests.helpers import REPLICA_ALIAS as ALIAS

pytestmark = pytest.mark.slow


@pytest.fixture
def standby():
    if not embedded_db.server_in_use():
        pytest.skip("a standby is started from the embedded server's data; DATABASE_URL points elsewhere")
    directory = Path(tempfile.mkdtemp(prefix="pgsb", dir="/tmp"))  # short: unix socket paths are limited
    started = embedded_db.standby_start(directory)
    yield started
    started.stop()
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def replica(standby, settings):
    """Point the spare alias at the standby and route reporting reads to it, as
    REPORTING_DATABASE_URL does."""
    spare = connections.settings[ALIAS]
    original = dict(spare)
    connections[ALIAS].close()
    del connections[ALIAS]
    spare.update(standby.settings(connection.settings_dict["NAME"]))
    settings.REPORTING_READ_DATABASE = ALIAS
    yield connections[ALIAS]
    connections[ALIAS].close()
    del connections[ALIAS]
    spare.clear()
    spare.update(original)


def primary_lsn() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_current_wal_lsn()::text")
        return cursor.fetchone()[0]


def wait_until(predicate, what: str, timeout: float = 30) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if predicate():
            return time.monotonic() - started
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def replayed(replica, lsn: str) -> bool:
    with replica.cursor() as cursor:
        cursor.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", [lsn])
        return bool(cursor.fetchone()[0])


def expected_from_primary() -> tuple[dict[str, list[int]], dict[str, int]]:
    rows = all_status_rows()
    latest = brute_force_latest(rows)
    lists = {status: [row[0] for row in listed] for status, listed in brute_force_lists(rows).items()}
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM reporting_order")
        orders = cursor.fetchone()[0]
    counts = {status: len(ids) for status, ids in lists.items()}
    counts["none"] = orders - len(latest)
    return lists, counts


@pytest.mark.django_db(transaction=True, databases=["default", ALIAS])
def test_reporting_reads_from_a_streaming_replica(replica):
    shop_services.orders_seed(orders=300, seed=6, until=EPOCH)
    first = services.views_refresh()

    # A refresh on the primary reaches the replica through WAL.
    seconds = wait_until(
        lambda: selectors.freshness().as_of == first.snapshot_at, "the refresh on the replica"
    )
    fresh = selectors.freshness()
    assert fresh.on_replica, "reads go to the standby"
    assert fresh.replay_lag is not None
    print(f"refresh visible on the replica after {seconds * 1000:.0f} ms")

    # Writes after the refresh: realtime reads on the replica are exact as of its replay point.
    for order_id in (3, 5, 7, 11):
        shop_services.order_status_record(order_id=order_id, status="cancelled")
    shop_services.order_create()
    wait_until(lambda: replayed(replica, primary_lsn()), "the writes on the replica")
    lists, counts = expected_from_primary()
    for strategy in ("realtime", "live"):
        assert selectors.order_status_counts(strategy=strategy).as_dict() == counts, strategy
        for status in Status.values:
            got = [r.order_id for r in selectors.order_iter_by_status(status=status, strategy=strategy)]
            assert got == lists[status], (strategy, status)
    snapshot = selectors.order_status_counts(strategy="snapshot")
    assert snapshot.freshness.changes_since_view == 6, (
        "4 statuses, 1 order and its status: pending on the replica"
    )
    assert snapshot.as_dict() != counts, "the snapshot is still the refresh's"

    second = services.views_refresh()
    wait_until(lambda: selectors.freshness().as_of == second.snapshot_at, "the second refresh on the replica")
    assert selectors.order_status_counts(strategy="snapshot").as_dict() == counts

    # The standby refuses writes.
    with pytest.raises(DatabaseError, match="read-only transaction"), replica.cursor() as cursor:
        cursor.execute(
            "INSERT INTO reporting_example_orderstatus (order_id, created, status) VALUES (1, "
            "now(), 'pending')"
        )
    with pytest.raises(DatabaseError, match=r"read-only transaction|recovery"), replica.cursor() as cursor:
        cursor.execute("REFRESH MATERIALIZED VIEW reporting.order_latest_status")


@pytest.mark.django_db
def test_without_a_replica_reads_use_the_primary():
    assert selectors.freshness().on_replica is False
