"""The one-shot run of ``manage.py bench``: every strategy side by side, in one run.

It works in a database of its own (created next to the configured one, dropped
at the end), so it never touches the user's data. For each size it seeds the
orders, refreshes, and times each measurement ``repeat`` times after a warm-up,
interleaving the approaches so that the machine's noise spreads over all of
them. It reports medians and p95 and ratios against the ``Subquery``
annotation (see docs/performance.md), measured in the same run.
"""

from __future__ import annotations

__all__ = ["AUDIT_SHARE", "BenchConfig", "BenchResults", "Measurement", "bench_run"]

import functools
import gc
import random
import statistics
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import psycopg
from django.core.management import call_command
from django.db import connection
from django.test import override_settings

from examples.shop import services as shop_services
from examples.shop.bench.cases import BASELINE, BI_VIEW, READS, fetchall, read_cases
from examples.shop.models import Status
from reporting import conf, exports, selectors, services
from reporting.choices import AuditOutcome, RefreshOutcome
from reporting.models import RefreshRun
from reporting.sql_files import in_schema

Progress = Callable[[str], None]


@dataclass(frozen=True)
class BenchConfig:
    sizes: list[int]
    repeat: int = 5
    seed: int = 0
    database: str = ""
    keep: bool = False
    replica: bool = False
    #: Only the exactness audit (seed, refresh, then its cases): minutes at 1 M orders, not the whole run.
    audit_only: bool = False
    #: Only the reads with a large unfolded tail (after seeding and a refresh).
    tail_only: bool = False
    #: Only the deploy of a changed view under a reader, two ways (seconds per phase; 0: not run).
    deploy_seconds: float = 0.0


@dataclass
class Measurement:
    """One figure: timings in milliseconds, or another unit for throughput and sizes."""

    orders: int
    group: str
    name: str
    approach: str
    samples: list[float]
    unit: str = "ms"
    baseline: str | None = None

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def p95(self) -> float:
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


@dataclass
class BenchResults:
    config: BenchConfig
    machine: dict[str, Any]
    measurements: list[Measurement] = field(default_factory=list)

    def find(self, orders: int, group: str, name: str, approach: str) -> Measurement | None:
        for m in self.measurements:
            if (m.orders, m.group, m.name, m.approach) == (orders, group, name, approach):
                return m
        return None

    def ratio(self, m: Measurement) -> float | None:
        """How many times faster than its baseline in the same run (>1: faster)."""
        if m.baseline is None or m.baseline == m.approach:
            return None
        base = self.find(m.orders, m.group, m.name, m.baseline)
        if base is None or m.median == 0:
            return None
        return base.median / m.median

    def as_dict(self) -> dict[str, Any]:
        return {
            "config": asdict(self.config),
            "machine": self.machine,
            "measurements": [
                {**asdict(m), "median": m.median, "p95": m.p95, "speedup_vs_baseline": self.ratio(m)}
                for m in self.measurements
            ],
        }


# --- Timing ------------------------------------------------------------------------------------------------


def _time(func: Callable[[], Any]) -> float:
    started = time.perf_counter()
    func()
    return (time.perf_counter() - started) * 1000


def _interleaved(cases: dict[str, Callable[[], Any]], repeat: int) -> dict[str, list[float]]:
    """Warm each case up once, then time them round-robin ``repeat`` times."""
    for func in cases.values():
        func()
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeat):
        for name, func in cases.items():
            samples[name].append(_time(func))
    return samples


def _ms(duration: Any) -> float:
    return duration.total_seconds() * 1000


def _execute(sql: str, params: Any = None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


# --- The run -----------------------------------------------------------------------------------------------


@contextmanager
def _own_database(name: str, keep: bool) -> Iterator[None]:
    """Point Django's default connection at a fresh database ``name`` for the duration."""
    settings_dict = connection.settings_dict
    original = settings_dict["NAME"]
    connection.close()
    with connection._nodb_cursor() as cursor:
        quoted = connection.ops.quote_name(name)
        cursor.execute(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)")
        cursor.execute(f"CREATE DATABASE {quoted}")
    settings_dict["NAME"] = name
    try:
        call_command("migrate", verbosity=0, interactive=False)
        yield
    finally:
        connection.close()
        settings_dict["NAME"] = original
        if not keep:
            with connection._nodb_cursor() as cursor:
                cursor.execute(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)")


TRUNCATE_SQL = (
    "TRUNCATE reporting_example_order, reporting_example_orderstatus, "
    "reporting_orderchange, reporting_refreshrun"
)
SINGLE_INSERT_SQL = (
    "INSERT INTO reporting_example_orderstatus (order_id, created, status) VALUES (%s, now(), 'complete')"
)
DELETE_LAST_SQL = (
    "DELETE FROM reporting_example_orderstatus "
    "WHERE id > (SELECT max(id) - %s FROM reporting_example_orderstatus)"
)


def _change(fraction: float, rng: random.Random, orders: int) -> int:
    """Cancel ``fraction`` of the orders (a new status row each), as one statement."""
    count = max(1, round(orders * fraction))
    ids = rng.sample(range(1, orders + 1), count)
    _execute(
        "INSERT INTO reporting_example_orderstatus (order_id, created, status) "
        "SELECT id, now(), 'cancelled' FROM unnest(%s::bigint[]) AS id",
        [ids],
    )
    return count


def _machine() -> dict[str, Any]:
    import os
    import platform

    version = fetchall("SHOW server_version")[0][0]
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "postgresql": version,
        "embedded": connection.settings_dict["ENGINE"] == "reporting.embedded_db",
    }


def bench_run(config: BenchConfig, progress: Progress) -> BenchResults:
    """Run the whole benchmark and return what it measured."""
    name = config.database or f"{connection.settings_dict['NAME']}_bench"
    with _own_database(name, config.keep):
        results = BenchResults(config=config, machine=_machine())
        for orders in config.sizes:
            _run_size(results, orders, config, progress)
            if orders != config.sizes[-1]:
                _execute(TRUNCATE_SQL)
        return results


def _run_size(results: BenchResults, orders: int, config: BenchConfig, progress: Progress) -> None:
    rng = random.Random(config.seed)
    repeat = config.repeat

    def add(
        group: str, name: str, approach: str, samples: list[float], unit: str = "ms", baseline=None
    ) -> None:
        results.measurements.append(Measurement(orders, group, name, approach, samples, unit, baseline))

    progress(f"{orders:,} orders: seeding")
    seed_ms = _time(lambda: shop_services.orders_seed(orders=orders, seed=config.seed))
    add("setup", "seed orders", "seed_orders", [seed_ms])
    progress(f"{orders:,} orders: first refresh")
    services.views_refresh(force=True)
    _execute("VACUUM (ANALYZE) reporting_example_order")
    _execute("VACUUM (ANALYZE) reporting_example_orderstatus")
    if config.tail_only:
        _bench_large_tail(add, orders, rng, repeat, progress)
        return

    if config.audit_only:
        _bench_audit(add, orders, rng, repeat, progress)
        return

    if config.deploy_seconds:
        from examples.shop.bench.deploy import bench_deploy

        bench_deploy(add, orders, lambda: _change(0.001, rng, orders), config.deploy_seconds, progress)
        return

    rows = list(selectors.order_iter_by_status(status="cancelled", strategy="snapshot"))
    cancelled_ids = [row.order_id for row in rows]
    # The deep page starts in the middle of the list.
    cursor_at = selectors.Cursor.of(rows[len(rows) // 2])
    add("setup", "cancelled orders", "count", [float(len(rows))], unit="rows")

    # The transfer-bound limit: the same number of bigint ids from a plain table.
    _execute("CREATE TABLE IF NOT EXISTS bench_ids (id bigint)")
    _execute("TRUNCATE bench_ids")
    _execute("INSERT INTO bench_ids SELECT unnest(%s::bigint[])", [cancelled_ids])
    _execute("VACUUM (ANALYZE) bench_ids")

    cases = read_cases(cursor_at)
    changed = 0
    for changed_label, fraction in (("0%", 0.0), ("0.1%", 0.001), ("1%", 0.01)):
        if fraction:
            # Cumulative: 0.1 % first, then up to 1 % of the orders changed since the refresh.
            changed += _change(fraction - changed / orders, rng, orders)
        progress(f"{orders:,} orders: reads with {changed_label} changed since the refresh")
        # The live strategies do not depend on the change log; "live" is measured at
        # every level anyway, so that each level's table stands on its own.
        approaches = ["live", "snapshot", "realtime", BI_VIEW] if fraction else list(cases)
        for query in READS:
            run = {approach: cases[approach][query] for approach in approaches if query in cases[approach]}
            if query == "all cancelled ids" and not fraction:
                run["plain table (transfer bound)"] = lambda: fetchall("SELECT id FROM bench_ids")
            baseline = BASELINE if query in cases[BASELINE] else "live"
            for approach, samples in _interleaved(run, repeat).items():
                add(f"read, {changed_label} changed", query, approach, samples, baseline=baseline)
        if fraction:
            # The same reads once a fold has taken the changes into the overlay, as the
            # scheduler does every REPORTING_FOLD_INTERVAL: what real-time reads cost
            # in a running system, where only the last fraction of a second is recomputed.
            progress(f"{orders:,} orders: reads with {changed_label} changed, folded")
            fold = services.overlay_fold()
            add(f"read, {changed_label} changed", "fold of the changes", "overlay_fold", [_ms(fold.duration)])
            for query in READS:
                folded = {"realtime, folded": cases["realtime"][query]}
                if query in cases[BI_VIEW]:
                    folded[f"{BI_VIEW}, folded"] = cases[BI_VIEW][query]
                baseline = BASELINE if query in cases[BASELINE] else "live"
                for approach, samples in _interleaved(folded, repeat).items():
                    add(f"read, {changed_label} changed", query, approach, samples, baseline=baseline)
        if fraction == 0.0:
            counts_sql = in_schema(
                "EXPLAIN (ANALYZE, FORMAT JSON) SELECT status, orders FROM reporting.order_status_counts"
            )
            server = [fetchall(counts_sql)[0][0][0]["Execution Time"] for _ in range(repeat + 1)][1:]
            add("read, 0% changed", "counts per status, server time", "snapshot", server)
        else:
            rt_counts = in_schema(
                "EXPLAIN (ANALYZE, FORMAT JSON) SELECT status, orders FROM reporting.order_status_counts_live"
            )
            server = [fetchall(rt_counts)[0][0][0]["Execution Time"] for _ in range(repeat + 1)][1:]
            add(f"read, {changed_label} changed", "counts per status, server time", "realtime", server)

    _bench_refresh(add, orders, rng, repeat, progress)
    _bench_writes(add, orders, rng, repeat, progress)
    _bench_export(add, orders, progress)
    _bench_audit(add, orders, rng, repeat, progress)
    _bench_large_tail(add, orders, rng, repeat, progress)
    if config.replica:
        _bench_replica(add, orders, rng, repeat, progress)


# Half the orders changed since the latest fold: what folds that stopped (no
# scheduler running) leave, as issue 24 measured it (500,000 at 1 M orders).
LARGE_TAIL = 0.5


def _bench_large_tail(add, orders: int, rng: random.Random, repeat: int, progress: Progress) -> None:
    """Reads with a large unfolded tail: live, realtime as it is (past the threshold it
    takes the live path), and realtime held on the tail path (the threshold off), which
    is how every real-time read ran before."""
    progress(f"{orders:,} orders: reads with a large unfolded tail")
    services.views_refresh(force=True)
    services.overlay_fold()
    changed = _change(LARGE_TAIL, rng, orders)
    group = f"read, {changed:,} changes unfolded"
    cancelled = Status.CANCELLED

    def tail_path(func: Callable[[], Any]) -> Callable[[], Any]:
        def run() -> Any:
            with override_settings(REPORTING_REALTIME_LIVE_TAIL_MIN=0):
                return func()

        return run

    def page(strategy: str) -> Any:
        return selectors.order_list_by_status(status=cancelled, strategy=strategy)

    def counts(strategy: str) -> Any:
        return selectors.order_status_counts(strategy=strategy)

    for query, read in (("page of 100", page), ("counts per status", counts)):
        run: dict[str, Callable[[], Any]] = {
            "live": functools.partial(read, "live"),
            "realtime": functools.partial(read, "realtime"),
            "realtime, tail path": tail_path(functools.partial(read, "realtime")),
        }
        for approach, samples in _interleaved(run, repeat).items():
            add(group, query, approach, samples, baseline="live")
    # Leave the tail folded, as a running scheduler would, for whatever runs next.
    services.overlay_fold()


def _bench_refresh(add, orders: int, rng: random.Random, repeat: int, progress: Progress) -> None:
    progress(f"{orders:,} orders: refreshes")
    services.views_refresh(force=True)
    main = in_schema("reporting.order_latest_status")

    plain = lambda: _execute(f"REFRESH MATERIALIZED VIEW {main}")  # noqa: E731
    concurrent = lambda: _execute(f"REFRESH MATERIALIZED VIEW CONCURRENTLY {main}")  # noqa: E731
    samples = _interleaved({"plain": plain, "concurrently": concurrent}, repeat)
    for approach, values in samples.items():
        add("refresh, nothing changed", "order_latest_status", approach, values, baseline="plain")
    services.views_refresh(force=True)
    unchanged = []
    for _ in range(repeat + 1):
        started = time.perf_counter()
        result = services.views_refresh()
        unchanged.append((time.perf_counter() - started) * 1000)
        assert result.outcome == RefreshOutcome.UNCHANGED, result
    add("refresh, nothing changed", "scheduled run", "unchanged skip", unchanged[1:])

    changed: dict[str, list[float]] = {"plain": [], "concurrently": [], "service (all views)": []}
    for _ in range(repeat):
        for approach, func in (
            ("plain", plain),
            ("concurrently", concurrent),
            ("service (all views)", lambda: services.views_refresh()),
        ):
            _change(0.01, rng, orders)
            changed[approach].append(_time(func))
    for approach, values in changed.items():
        add("refresh, 1% changed", "order_latest_status", approach, values, baseline="plain")
    services.views_refresh(force=True)
    for view in (
        "order_latest_status",
        "order_status_counts",
        "order_daily_status",
        "order_status_transitions",
        "order_transitions_daily",
    ):
        size = fetchall("SELECT pg_total_relation_size(%s::regclass)", [in_schema(f"reporting.{view}")])[0][0]
        add("refresh", f"size of {view}", "MiB", [size / 2**20], unit="MiB")


AUDIT_SAMPLES = (1000, 10_000)
AUDIT_SHARE = "share of REPORTING_AUDIT_INTERVAL"


def _bench_audit(add, orders: int, rng: random.Random, repeat: int, progress: Progress) -> None:
    """The exactness audit: its run time and keys/s, its share of a core, and a drift it finds.

    As the scheduler runs it: 1 % of the orders changed since the refresh and folded
    into the overlay, and before each audit 0.2 % more changed and folded, so that
    its recent keys are full (``sample`` of them) and its range is random.
    """
    progress(f"{orders:,} orders: exactness audit")
    services.views_refresh(force=True)
    _change(0.01, rng, orders)
    services.overlay_fold()
    interval = conf.audit_interval() or 60.0
    for sample in sorted({min(sample, orders) for sample in AUDIT_SAMPLES}):
        services.exactness_audit(sample=sample)  # warm-up
        durations: list[float] = []
        keys: list[float] = []
        for _ in range(repeat):
            _change(0.002, rng, orders)
            services.overlay_fold()
            run = services.exactness_audit(sample=sample)
            assert run.outcome == AuditOutcome.EXACT, run
            durations.append(_ms(run.duration))
            keys.append(run.keys_checked / run.duration.total_seconds())
        label = f"sample {sample:,} (range + recent keys)"
        add("audit", label, "run time", durations)
        add("audit", label, "keys/s", keys, unit="keys/s")
        # Wall time over the interval: an upper bound of the core it keeps busy (the
        # database's share and Python's together, never both at once).
        add("audit", label, AUDIT_SHARE, [ms / (interval * 1000) * 100 for ms in durations], unit="%")
    # A drift nobody logged: 1 % of the orders written with the trigger off.
    trigger = "reporting_history_log_insert"
    _execute(f"ALTER TABLE reporting_example_orderstatus DISABLE TRIGGER {trigger}")
    try:
        planted = _change(0.01, rng, orders)
    finally:
        _execute(f"ALTER TABLE reporting_example_orderstatus ENABLE ALWAYS TRIGGER {trigger}")
    found = [services.exactness_audit(sample=min(AUDIT_SAMPLES[0], orders)).mismatches for _ in range(repeat)]
    add("audit", f"{planted:,} orders changed unlogged: found per audit", "mismatches", found, unit="keys")
    services.views_refresh(force=True)


def batch_rows(orders: int) -> int:
    """The rows of the batch insert timed with and without the change-log trigger."""
    return min(100_000, orders)


LOG_TRIGGERS = ("reporting_history_log_insert",)


def _bench_writes(add, orders: int, rng: random.Random, repeat: int, progress: Progress) -> None:
    progress(f"{orders:,} orders: writes with and without the change-log trigger")

    def triggers(enabled: bool) -> None:
        action = "ENABLE" if enabled else "DISABLE"
        for trigger in LOG_TRIGGERS:
            _execute(f"ALTER TABLE reporting_example_orderstatus {action} TRIGGER {trigger}")

    batch = batch_rows(orders)
    batch_sql = (
        "INSERT INTO reporting_example_orderstatus (order_id, created, status) "
        "SELECT 1 + (g * 7919) %% %s, now(), 'complete' FROM generate_series(1, %s) AS g"
    )

    def one_batch() -> float:
        # Timed inside a transaction that is rolled back, so the table does not grow.
        with connection.cursor() as cursor:
            cursor.execute("BEGIN")
            started = time.perf_counter()
            cursor.execute(batch_sql, [orders, batch])
            elapsed = (time.perf_counter() - started) * 1000
            cursor.execute("ROLLBACK")
        return elapsed

    singles = min(10_000, orders)
    params = connection.get_connection_params()
    for key in ("cursor_factory", "context", "prepare_threshold"):
        params.pop(key, None)

    def single_rows() -> float:
        ids = [rng.randint(1, orders) for _ in range(singles)]
        with psycopg.connect(autocommit=True, **params) as conn:
            started = time.perf_counter()
            for order_id in ids:
                conn.execute(SINGLE_INSERT_SQL, [order_id])
            elapsed = (time.perf_counter() - started) * 1000
            conn.execute(DELETE_LAST_SQL, [singles])
        return elapsed

    results: dict[tuple[str, str], list[float]] = {}
    try:
        for label, func in (
            (f"{batch:,} rows in one INSERT", one_batch),
            (f"{singles:,} single-row commits", single_rows),
        ):
            for enabled in (True, False):
                triggers(enabled)
                func()  # warm-up
            for _ in range(repeat):
                for enabled in (True, False):
                    triggers(enabled)
                    approach = "with trigger" if enabled else "without trigger"
                    results.setdefault((label, approach), []).append(func())
    finally:
        triggers(True)
    for (label, approach), values in results.items():
        add("writes", label, approach, values, baseline="without trigger")
    services.views_refresh(force=True)


def _bench_export(add, orders: int, progress: Progress) -> None:
    progress(f"{orders:,} orders: CSV export")

    def export() -> int:
        return sum(len(chunk) for chunk in exports.orders_csv_chunks(status="cancelled", strategy="realtime"))

    # Throughput without tracemalloc (it slows every allocation), then the peak
    # memory in a second run with it.
    started = time.perf_counter()
    size = export()
    elapsed = time.perf_counter() - started
    gc.collect()
    tracemalloc.start()
    export()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rows = fetchall("SELECT count(*) FROM public.reporting_latest_status_rows('cancelled')")[0][0]
    add("csv export", "cancelled orders", "rows/s", [rows / elapsed], unit="rows/s")
    add("csv export", "cancelled orders", "peak Python memory", [peak / 2**20], unit="MiB")
    add("csv export", "cancelled orders", "CSV size", [size / 2**20], unit="MiB")


def _bench_replica(add, orders: int, rng: random.Random, repeat: int, progress: Progress) -> None:
    """How long a refresh on the primary takes to be visible on a hot standby, and its WAL volume."""
    import shutil
    import tempfile
    from pathlib import Path

    from reporting import embedded_db

    if not embedded_db.server_in_use():
        progress("replica: skipped, it needs the embedded server")
        return
    progress(f"{orders:,} orders: starting a hot standby (pg_basebackup)")
    directory = Path(tempfile.mkdtemp(prefix="pgsb", dir="/tmp"))
    standby = embedded_db.standby_start(directory)
    try:
        params = standby.settings(connection.settings_dict["NAME"])
        with psycopg.connect(
            host=params["HOST"],
            port=params["PORT"],
            user=params["USER"],
            dbname=params["NAME"],
            autocommit=True,
        ) as replica:
            visible: list[float] = []
            wal: dict[str, list[float]] = {"concurrently": [], "plain": []}

            def as_of() -> Any:
                row = replica.execute(in_schema("SELECT as_of FROM reporting.freshness")).fetchone()
                return row[0] if row else None

            for _ in range(repeat):
                for concurrently in (True, False):
                    _change(0.01, rng, orders)
                    old = as_of()
                    seen: list[float] = []
                    stop = threading.Event()

                    def watch(old: Any = old, seen: list[float] = seen, stop: threading.Event = stop) -> None:
                        # Polls the standby during the whole refresh, so the moment the new
                        # snapshot appears there is seen even while the primary still vacuums.
                        while not stop.is_set() and not seen:
                            if as_of() != old:
                                seen.append(time.time())
                            time.sleep(0.002)

                    watcher = threading.Thread(target=watch)
                    watcher.start()
                    before = fetchall("SELECT pg_current_wal_lsn()")[0][0]
                    result = services.views_refresh(concurrently=concurrently)
                    after = fetchall("SELECT pg_current_wal_lsn()")[0][0]
                    deadline = time.monotonic() + 60
                    while not seen and time.monotonic() < deadline:
                        time.sleep(0.002)
                    stop.set()
                    watcher.join()
                    size = fetchall("SELECT pg_wal_lsn_diff(%s, %s)", [after, before])[0][0]
                    wal["concurrently" if concurrently else "plain"].append(float(size) / 2**20)
                    run = RefreshRun.objects.get(pk=result.id)
                    if concurrently and seen and run.finished is not None:
                        # From the moment the run was marked ok, just before its commit.
                        visible.append((seen[0] - run.finished.timestamp()) * 1000)
            add("replica", "refresh (1% changed) visible on the standby", "after its commit", visible)
            for approach, values in wal.items():
                add("replica", "WAL written by the refresh service", approach, values, unit="MiB")
    finally:
        standby.stop()
        shutil.rmtree(directory, ignore_errors=True)
