"""``manage.py bench --steady``: a shop taking orders while dashboards read, under both designs.

One run, two phases on the same data, each ``seconds`` long:

* **refresh** (the design before the overlay): the refresh service runs every
  ``refresh_interval`` seconds (back to back when it takes longer), and real-time
  reads correct the materialized views by every order changed since the refresh;
* **overlay**: folds every ``fold_interval`` seconds, and real-time reads correct
  views + overlay by the orders changed since the latest fold; then, with the
  workload still running, one refresh (a compaction, which the scheduler runs
  every ``REPORTING_REFRESH_INTERVAL``), timed apart: what the reads, folds and
  lag are while it runs is reported in a column of its own.

In each phase the same threads run against the database:

* a writer: ``rate`` changes a second in ten transactions a second, 30 % new
  orders (with their ``pending`` row), the rest a new status row on one of the
  newest 5 % of orders;
* a reader, every 0.5 s: a page of the 100 most recent cancelled orders and the
  counts per status, through the selectors (``realtime``) and in plain SQL on the
  BI views, timed; and how many orders the read had to recompute;
* a checker, every 20 s: the real-time counts against the counts computed from
  the whole history (``DISTINCT ON``), in one REPEATABLE READ snapshot: any
  difference is a mismatch. It is the bench's own instrument, not part of the
  workload, and it reads everything (seconds of a core at 10 M orders), so the
  reader does not time reads while it runs.

The old design's reads are rebuilt in a schema ``bench_old`` of the bench
database from the SQL it used (``bench/sql/``: ``pending_changes_v2`` and the ``_v2``
real-time views), and its page query is the one its selector ran.

Maintenance cost is the CPU time of the database server process that runs the
folds or refreshes (``/proc``; only when the server runs on this machine),
against the wall time: the share of one core. The compaction's own CPU time is
measured the same way, and spread over ``REPORTING_REFRESH_INTERVAL`` for the
share it adds. Parallel query is off in those sessions, so that one process does
all of the work.
"""

from __future__ import annotations

__all__ = [
    "COLUMNS",
    "TIMELINE_COLUMNS",
    "PhaseResult",
    "SteadyConfig",
    "SteadyResults",
    "Window",
    "compaction_share",
    "cpu_per_1000",
    "maintenance",
    "percentile",
    "steady_rows",
    "steady_run",
    "timeline_rows",
]

import os
import random
import statistics
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from django.core.management import call_command
from django.db import connection

from examples.shop import services as shop_services
from examples.shop.models import Status
from reporting import conf, selectors, services
from reporting.bi import RoleSettings
from reporting.sql_files import in_schema

Progress = Callable[[str], None]
PHASES = ("refresh", "overlay")
# The reads timed, in the order of the report.
READS = (
    ("page", "realtime page of 100 (selector), ms"),
    ("counts", "realtime counts (selector), ms"),
    ("bi_page", "BI _live page of 100 (SQL), ms"),
    ("bi_counts", "BI _live counts (SQL), ms"),
)


@dataclass(frozen=True)
class SteadyConfig:
    orders: int
    rate: float = 200.0
    seconds: float = 120.0
    fold_interval: float = 0.5
    refresh_interval: float = 10.0
    seed: int = 0
    database: str = ""
    keep: bool = False
    reuse: bool = False
    #: Seconds the overlay design's workload goes on after its compaction.
    after_seconds: float = 60.0
    #: Changes to existing orders spread over all of them, not the newest 5 %.
    spread: bool = False


@dataclass
class Window:
    """What happened in one stretch of a phase: steady, or while a compaction ran."""

    seconds: float = 0.0
    reads_ms: dict[str, list[float]] = field(default_factory=lambda: {name: [] for name, _ in READS})
    recomputed: list[int] = field(default_factory=list)
    lag_s: list[float] = field(default_factory=list)
    maintenance_runs: list[tuple[float, int]] = field(default_factory=list)  # (seconds, orders)
    maintenance_cpu_s: float | None = None


@dataclass
class PhaseResult:
    """What one design did under the workload: steady, and (overlay) during a compaction."""

    design: str
    steady: Window = field(default_factory=Window)
    compacting: Window = field(default_factory=Window)
    #: The overlay design right after its compaction (issue 24: reads spiked then).
    after: Window = field(default_factory=Window)
    changes: int = 0
    checks: int = 0
    mismatches: list[str] = field(default_factory=list)
    compaction_s: float | None = None
    compaction_cpu_s: float | None = None
    #: The first fold of the compaction's generation: seconds, orders folded.
    first_fold: tuple[float, int] | None = None
    #: The compaction's overlay handover: seconds, orders carried into its generation.
    handover: tuple[float, int] | None = None
    errors: list[str] = field(default_factory=list)
    #: Every read of the phase: (monotonic time it started, read, ms, orders the read recomputed).
    timeline: list[tuple[float, str, float, int]] = field(default_factory=list)
    #: Monotonic times of the compaction: "start", "commit" (its views and generation
    #: visible to readers), "first fold" (the first fold of its generation committed), "end".
    marks: dict[str, float] = field(default_factory=dict)


@dataclass
class SteadyResults:
    config: SteadyConfig
    phases: list[PhaseResult]
    setup: dict[str, float]


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q`` quantile of ``values`` (nearest rank), ``None`` for none."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# --- The old design's reads, rebuilt from its versioned SQL -------------------------------------------------

OLD_SCHEMA = "bench_old"
OLD_PAGE_SQL = in_schema("""
WITH pending AS MATERIALIZED (
    SELECT p.order_id FROM bench_old.pending_changes AS p ORDER BY p.order_id
)
(SELECT v.order_id, v.status_id, v.status::text, v.status_created
 FROM reporting.order_latest_status AS v
 WHERE v.status = 'cancelled' AND v.order_id NOT IN (SELECT order_id FROM pending)
 ORDER BY v.status_created DESC, v.order_id DESC LIMIT 100)
UNION ALL
(SELECT latest.order_id, latest.id, latest.status::text, latest.created
 FROM pending AS p
 CROSS JOIN LATERAL (
     SELECT s.order_id, s.id, s.status, s.created FROM public.reporting_orderstatus AS s
     WHERE s.order_id = p.order_id ORDER BY s.created DESC, s.id DESC LIMIT 1
 ) AS latest
 WHERE latest.status = 'cancelled'
 ORDER BY latest.created DESC, latest.order_id DESC LIMIT 100)
ORDER BY 4 DESC, 1 DESC LIMIT 100
""")


# The old design's SQL, as it was (bench/sql/): the app keeps only its current SQL.
OLD_SQL_DIR = Path(__file__).resolve().parent / "sql"


def _old_sql(name: str) -> str:
    return in_schema((OLD_SQL_DIR / f"{name}.sql").read_text().strip().rstrip(";"))


def _old_views_create(cursor: Any) -> None:
    cursor.execute(f"DROP SCHEMA IF EXISTS {OLD_SCHEMA} CASCADE")
    cursor.execute(f"CREATE SCHEMA {OLD_SCHEMA}")
    pending = "bench_old.pending_changes"
    cursor.execute(f"CREATE VIEW {pending} AS {_old_sql('pending_changes_v2')}")
    for name in ("order_latest_status_live_v2", "order_status_counts_live_v2"):
        sql = _old_sql(name).replace("public.reporting_pending_changes", pending)
        cursor.execute(f"CREATE VIEW {OLD_SCHEMA}.{name.removesuffix('_v2')} AS {sql}")


BI_PAGE = (
    "SELECT order_id, status_created FROM {schema}.order_latest_status_live WHERE status = 'cancelled' "
    "ORDER BY status_created DESC, order_id DESC LIMIT 100"
)
BI_COUNTS = "SELECT status, orders FROM {schema}.order_status_counts_live"
# Status NULL: the orders without rows, as the overlay design's views count them
# (the old design's views called them 'none': the checker maps that to NULL).
LIVE_COUNTS = """
SELECT l.status::text, count(*)
FROM public.reporting_order AS o
LEFT JOIN (
    SELECT DISTINCT ON (s.order_id) s.order_id, s.status
    FROM public.reporting_orderstatus AS s
    ORDER BY s.order_id, s.created DESC, s.id DESC
) AS l ON l.order_id = o.id
GROUP BY 1
"""


# --- Database and processes ---------------------------------------------------------------------------------


def _connect() -> psycopg.Connection[Any]:
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    return psycopg.connect(**params, autocommit=True)


def _as_bi_role(conn: psycopg.Connection[Any], sql: str) -> list[tuple[Any, ...]]:
    """Run ``sql`` with the settings ``bi_role create`` gives a BI role (jit off), in a transaction.

    Transaction-local, so that nothing stays in a server session behind a pooler.
    """
    with conn.transaction():
        for name, value in RoleSettings().parameters().items():
            conn.execute("SELECT set_config(%s, %s, true)", [name, value])
        return conn.execute(sql).fetchall()  # type: ignore[call-overload]


def _one(conn: psycopg.Connection[Any], sql: str) -> Any:
    row = conn.execute(sql).fetchone()  # type: ignore[call-overload]
    assert row is not None
    return row[0]


def _cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) of a local server process, or ``None`` if it cannot be read."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def _visible(xid: int, snapshot: str) -> bool:
    xmin, xmax, xip = snapshot.split(":")
    return xid < int(xmin) or (xid < int(xmax) and str(xid) not in xip.split(","))


@contextmanager
def _steady_database(config: SteadyConfig, progress: Progress, setup: dict[str, float]) -> Iterator[None]:
    """The bench database, seeded with ``orders`` orders; kept and reused with ``reuse``."""
    settings_dict = connection.settings_dict
    original = settings_dict["NAME"]
    name = config.database or f"{original}_steady_{config.orders}"
    connection.close()
    with connection._nodb_cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        exists = cursor.fetchone() is not None
        quoted = connection.ops.quote_name(name)
        if exists and not config.reuse:
            cursor.execute(f"DROP DATABASE {quoted} WITH (FORCE)")
        if not exists or not config.reuse:
            cursor.execute(f"CREATE DATABASE {quoted}")
    settings_dict["NAME"] = name
    try:
        call_command("migrate", verbosity=0, interactive=False)
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM reporting_example_order")
            present = cursor.fetchone()[0]
        if present < config.orders:
            progress(f"seeding {config.orders - present:,} orders")
            started = time.perf_counter()
            shop_services.orders_seed(orders=config.orders - present, seed=config.seed)
            setup["seed_s"] = time.perf_counter() - started
            with connection.cursor() as cursor:
                cursor.execute("VACUUM (ANALYZE) reporting_example_order")
                cursor.execute("VACUUM (ANALYZE) reporting_example_orderstatus")
        with connection.cursor() as cursor:
            _old_views_create(cursor)
        yield
    finally:
        connection.close()
        settings_dict["NAME"] = original
        if not config.keep and not config.reuse:
            with connection._nodb_cursor() as cursor:
                cursor.execute(f"DROP DATABASE IF EXISTS {connection.ops.quote_name(name)} WITH (FORCE)")


# --- The phase ----------------------------------------------------------------------------------------------


class _Phase:
    def __init__(self, design: str, config: SteadyConfig) -> None:
        self.design = design
        self.config = config
        self.result = PhaseResult(design)
        self.stop = threading.Event()
        self.commits: list[tuple[float, int]] = []  # (wall time after commit, xid)
        self.snapshots: list[tuple[float, str]] = []  # (wall time after commit, snapshot) of maintenance
        self.compacting = threading.Event()
        self.after_compaction = threading.Event()
        self.checking = threading.Event()
        self.compaction_window = (float("inf"), float("inf"))  # monotonic start and end
        self.maintenance_pid: int | None = None

    def window(self) -> Window:
        """Where what happens now is counted."""
        if self.compacting.is_set():
            return self.result.compacting
        return self.result.after if self.after_compaction.is_set() else self.result.steady

    def guarded(self, func: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                func()
            except Exception as exc:  # reported with the results, never hidden
                self.result.errors.append(f"{func.__name__}: {type(exc).__name__}: {exc}")
                self.stop.set()
            finally:
                connection.close()

        return run

    def writer(self) -> None:
        rng = random.Random(self.config.seed + len(self.design))
        per_tick = max(1, round(self.config.rate / 10))
        with _connect() as conn:
            top = _one(conn, "SELECT max(id) FROM reporting_example_order")
            next_tick = time.monotonic()
            while not self.stop.is_set():
                new = sum(rng.random() < 0.3 for _ in range(per_tick))
                low = 1 if self.config.spread else int(top * 0.95)
                existing = [rng.randint(low, top) for _ in range(per_tick - new)]
                with conn.transaction():
                    rows = conn.execute(
                        "INSERT INTO reporting_example_order (created) SELECT now() FROM "
                        "generate_series(1, %s) "
                        "RETURNING id",
                        [new],
                    ).fetchall()
                    ids = [r[0] for r in rows]
                    statuses = ["pending"] * len(ids) + [rng.choice(Status.values) for _ in existing]
                    conn.execute(
                        "INSERT INTO reporting_example_orderstatus (order_id, created, status) "
                        "SELECT unnest(%s::bigint[]), now(), unnest(%s::text[])",
                        [ids + existing, statuses],
                    )
                    xid = _one(conn, "SELECT pg_current_xact_id()::text::bigint")
                self.commits.append((time.monotonic(), xid))
                self.result.changes += per_tick
                if ids:
                    top = max(top, *ids)
                next_tick += 0.1
                time.sleep(max(0.0, next_tick - time.monotonic()))

    def maintenance(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SET max_parallel_workers_per_gather = 0")
            cursor.execute("SELECT pg_backend_pid()")
            self.maintenance_pid = cursor.fetchone()[0]
        interval = self.config.fold_interval if self.design == "overlay" else self.config.refresh_interval
        next_run = time.monotonic()
        generation = None
        while not self.stop.is_set():
            started = time.perf_counter()
            window = self.window()
            if self.design == "overlay":
                fold = services.overlay_fold()
                with connection.cursor() as cursor:
                    cursor.execute(
                        "SELECT snapshot FROM reporting_fold WHERE generation = %s", [fold.generation]
                    )
                    row = cursor.fetchone()
                orders = fold.orders
                if generation is not None and fold.generation != generation:
                    self.result.first_fold = (fold.duration.total_seconds(), fold.orders)
                    self.result.marks["first fold"] = time.monotonic()
                generation = fold.generation or generation
            else:
                run = services.views_refresh(force=False)
                with connection.cursor() as cursor:
                    cursor.execute("SELECT snapshot FROM reporting_refreshrun WHERE id = %s", [run.id])
                    row = cursor.fetchone()
                orders = run.changes_absorbed or 0
            if row and row[0]:
                self.snapshots.append((time.monotonic(), row[0]))
            window.maintenance_runs.append((time.perf_counter() - started, orders))
            next_run += interval
            self.stop.wait(max(0.0, next_run - time.monotonic()))
            next_run = max(next_run, time.monotonic())

    def compaction(self) -> None:
        """One refresh of the overlay design's views, with the workload running; in this thread."""
        with connection.cursor() as cursor:
            cursor.execute("SET max_parallel_workers_per_gather = 0")
            cursor.execute("SELECT pg_backend_pid()")
            pid = cursor.fetchone()[0]
        cpu_before = _cpu_seconds(pid)
        started = time.perf_counter()
        try:
            run = services.views_refresh(force=True)
            if run.handed_over is not None and run.handover_duration is not None:
                self.result.handover = (run.handover_duration.total_seconds(), run.handed_over)
            if run.duration is not None:
                # The run's end is recorded just before it commits, in the database's clock.
                committed = (run.started + run.duration).timestamp()
                self.result.marks["commit"] = time.monotonic() - (time.time() - committed)
        finally:
            self.result.compaction_s = time.perf_counter() - started
            cpu_after = _cpu_seconds(pid)
            if cpu_before is not None and cpu_after is not None:
                self.result.compaction_cpu_s = cpu_after - cpu_before
            connection.close()

    def reader(self) -> None:
        schema = in_schema("reporting") if self.design == "overlay" else OLD_SCHEMA
        pending = (
            "public.reporting_pending_changes"
            if self.design == "overlay"
            else f"{OLD_SCHEMA}.pending_changes"
        )
        with _connect() as bi:
            bi.execute("SET max_parallel_workers_per_gather = 0")
            with connection.cursor() as cursor:
                cursor.execute("SET max_parallel_workers_per_gather = 0")
            while not self.stop.wait(0.5):
                while self.checking.is_set() and not self.stop.wait(0.05):
                    pass
                window = self.window()
                page: Callable[[], object]
                counts: Callable[[], object]
                if self.design == "overlay":
                    page = lambda: selectors.order_list_by_status(status="cancelled", strategy="realtime")  # noqa: E731
                    counts = lambda: selectors.order_status_counts(strategy="realtime")  # noqa: E731
                else:
                    page = lambda: bi.execute(OLD_PAGE_SQL).fetchall()  # noqa: E731
                    counts = lambda: bi.execute(BI_COUNTS.format(schema=OLD_SCHEMA)).fetchall()  # noqa: E731
                timed = []
                for name, func in (
                    ("page", page),
                    ("counts", counts),
                    ("bi_page", lambda: _as_bi_role(bi, BI_PAGE.format(schema=schema))),
                    ("bi_counts", lambda: _as_bi_role(bi, BI_COUNTS.format(schema=schema))),
                ):
                    at, started = time.monotonic(), time.perf_counter()
                    func()
                    ms = (time.perf_counter() - started) * 1000
                    window.reads_ms[name].append(ms)
                    timed.append((at, name, ms))
                n = _one(bi, f"SELECT count(*) FROM {pending}")  # noqa: S608 - constants
                window.recomputed.append(n)
                self.result.timeline.extend((at, name, ms, n) for at, name, ms in timed)

    def checker(self) -> None:
        schema = in_schema("reporting") if self.design == "overlay" else OLD_SCHEMA
        with _connect() as conn:
            conn.execute("SET max_parallel_workers_per_gather = 0")
            while not self.stop.is_set():
                self.checking.set()
                try:
                    with conn.transaction():
                        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                        realtime = {
                            None if s == "none" and self.design != "overlay" else s: n
                            for s, n in conn.execute(BI_COUNTS.format(schema=schema)).fetchall()
                            if n
                        }
                        live = dict(conn.execute(LIVE_COUNTS).fetchall())
                finally:
                    self.checking.clear()
                self.result.checks += 1
                if realtime != live:
                    self.result.mismatches.append(f"{realtime} != {live}")
                # A pause between checks: each reads the whole history (seconds at
                # 10 M orders), and the reader waits for it.
                self.stop.wait(20)

    def _cpu(self) -> float | None:
        return _cpu_seconds(self.maintenance_pid) if self.maintenance_pid is not None else None

    def run(self) -> PhaseResult:
        threads = [self.writer, self.maintenance, self.reader, self.checker]
        started = time.monotonic()
        running = [threading.Thread(target=self.guarded(t), name=t.__name__) for t in threads]
        for thread in running:
            thread.start()
        while self.maintenance_pid is None and not self.stop.wait(0.01):
            pass
        cpu_start = self._cpu()
        self.stop.wait(self.config.seconds)
        cpu_steady = self._cpu()
        self.result.steady.seconds = time.monotonic() - started
        if self.design == "overlay" and not self.stop.is_set():
            self.compacting.set()
            compaction_started = time.monotonic()
            self.result.marks["start"] = compaction_started
            self.guarded(self.compaction)()
            self.compaction_window = (compaction_started, time.monotonic())
            self.result.marks["end"] = time.monotonic()
            self.result.compacting.seconds = time.monotonic() - compaction_started
            cpu_compacting = self._cpu()
            if cpu_steady is not None and cpu_compacting is not None:
                self.result.compacting.maintenance_cpu_s = cpu_compacting - cpu_steady
            # The same workload right after: the first fold of the new generation,
            # the views' new statistics and plans.
            self.after_compaction.set()
            self.compacting.clear()
            after_started = time.monotonic()
            self.stop.wait(self.config.after_seconds)
            self.result.after.seconds = time.monotonic() - after_started
            cpu_after = self._cpu()
            if cpu_compacting is not None and cpu_after is not None:
                self.result.after.maintenance_cpu_s = cpu_after - cpu_compacting
        self.stop.set()
        for thread in running:
            thread.join()
        if cpu_start is not None and cpu_steady is not None:
            self.result.steady.maintenance_cpu_s = cpu_steady - cpu_start
        self._lags()
        return self.result

    def _lags(self) -> None:
        """For each commit of the writer, the time until maintenance had it (a fold or refresh saw it)."""
        snapshots = self.snapshots
        first = 0
        for committed, xid in self.commits:
            while first < len(snapshots) and snapshots[first][0] < committed:
                first += 1
            start, end = self.compaction_window
            if start <= committed < end:
                window = self.result.compacting
            elif committed >= end:
                window = self.result.after
            else:
                window = self.result.steady
            for done, snapshot in snapshots[first:]:
                if _visible(xid, snapshot):
                    window.lag_s.append(done - committed)
                    break


def steady_run(config: SteadyConfig, progress: Progress) -> SteadyResults:
    """Run both designs under the same workload and return what each did."""
    setup: dict[str, float] = {}
    with _steady_database(config, progress, setup):
        phases = []
        for design in PHASES:
            progress(f"{design}: refreshing before the phase")
            started = time.perf_counter()
            services.views_refresh(force=True)
            setup[f"refresh before {design} (s)"] = time.perf_counter() - started
            if design == "overlay":
                services.overlay_fold()
            connection.close()
            progress(f"{design}: {config.seconds:g} s at {config.rate:g} changes/s")
            phases.append(_Phase(design, config).run())
        return SteadyResults(config=config, phases=phases, setup=setup)


COLUMNS = ("refresh design", "overlay design", "overlay, during a compaction", "overlay, after it")


def maintenance(w: Window) -> tuple[float | None, float | None]:
    """A window's maintenance: milliseconds per 1,000 orders (or changes) it took in, and % of one core."""
    total_s = sum(s for s, _ in w.maintenance_runs)
    total_orders = sum(n for _, n in w.maintenance_runs)
    per_1000 = 1000 * total_s / total_orders * 1000 if total_orders else None
    cpu = 100 * w.maintenance_cpu_s / w.seconds if w.maintenance_cpu_s is not None and w.seconds else None
    return per_1000, cpu


def cpu_per_1000(w: Window) -> float | None:
    """The maintenance process's CPU time per 1,000 orders (or changes) it took in, in ms."""
    total_orders = sum(n for _, n in w.maintenance_runs)
    if w.maintenance_cpu_s is None or not total_orders:
        return None
    return 1000 * w.maintenance_cpu_s / total_orders * 1000


def compaction_share(p: PhaseResult) -> float | None:
    """The share of one core a compaction adds, run every ``REPORTING_REFRESH_INTERVAL``."""
    interval = conf.refresh_interval()
    if p.compaction_cpu_s is None or not interval:
        return None
    return 100 * p.compaction_cpu_s / interval


TIMELINE_COLUMNS = (
    "stretch of the overlay phase",
    "seconds",
    "reads",
    *(f"{label.removesuffix(', ms')}, ms p50 / p99 / max" for _, label in READS),
    "orders recomputed per read, max",
)


def timeline_rows(report: SteadyResults) -> list[tuple[str, ...]]:
    """The overlay phase's reads by when they started around its compaction.

    The compaction's own column in the main table runs until the refresh has also
    vacuumed; here its commit (the moment readers switch to its views and generation)
    and the first fold of its generation split it: between the two, every real-time
    read recomputes each order changed while the compaction ran.
    """
    overlay = next(p for p in report.phases if p.design == "overlay")
    marks, timeline = overlay.marks, overlay.timeline
    if "start" not in marks or "commit" not in marks or not timeline:
        return []
    folded = marks.get("first fold", marks["commit"])
    last = max(at for at, *_ in timeline)
    stretches = [
        ("before the compaction", min(at for at, *_ in timeline), marks["start"]),
        ("compaction running, until it commits", marks["start"], marks["commit"]),
        ("its commit to the first fold of its generation", marks["commit"], folded),
        ("0-60 s after that fold", folded, folded + 60),
        ("60-180 s after it", folded + 60, folded + 180),
        ("180 s after it and later", folded + 180, last + 1),
    ]
    rows: list[tuple[str, ...]] = []
    for label, low, high in stretches:
        reads = [(name, ms, n) for at, name, ms, n in timeline if low <= at < high]
        if high <= low or not reads:
            continue
        cells = []
        for name, _ in READS:
            times = [ms for read, ms, _ in reads if read == name]
            quantiles = (percentile(times, q) for q in (0.5, 0.99, 1.0))
            cells.append(" / ".join(f"{value:,.1f}" for value in quantiles) if times else "")
        rows.append(
            (
                label,
                f"{min(high, last) - low:,.1f}",
                f"{len(reads) // len(READS):,}",
                *cells,
                f"{max(n for _, _, n in reads):,}",
            )
        )
    return rows


def _windows(report: SteadyResults) -> list[Window]:
    by = {p.design: p for p in report.phases}
    return [by["refresh"].steady, by["overlay"].steady, by["overlay"].compacting, by["overlay"].after]


def steady_rows(report: SteadyResults) -> list[tuple[str, ...]]:
    """The report as rows of text: a measurement, then one cell per column of ``COLUMNS``."""
    overlay = next(p for p in report.phases if p.design == "overlay")
    windows = _windows(report)

    def fmt(value: float | None, spec: str = ",.1f") -> str:
        return "" if value is None else format(value, spec)

    rows: list[tuple[str, ...]] = []
    for name, label in READS:
        for q, qname in ((0.5, "p50"), (0.99, "p99")):
            rows.append((f"{label} {qname}", *(fmt(percentile(w.reads_ms[name], q)) for w in windows)))
    for q, qname in ((0.5, "p50"), (1.0, "max")):
        rows.append(
            (
                f"orders recomputed per read, {qname}",
                *(fmt(percentile(w.recomputed, q), ",.0f") for w in windows),
            )
        )
    for q, qname in ((0.5, "p50"), (0.99, "p99")):
        rows.append(
            (f"lag: commit to maintained state, {qname}, s", *(fmt(percentile(w.lag_s, q)) for w in windows))
        )
    rows.append(
        (
            "maintenance runs (median / max duration)",
            *(
                f"{len(w.maintenance_runs)} ({statistics.median(s for s, _ in w.maintenance_runs):.2f} / "
                f"{max(s for s, _ in w.maintenance_runs):.2f} s)"
                if w.maintenance_runs
                else ""
                for w in windows
            ),
        )
    )
    shares = [maintenance(w) for w in windows]
    rows.append(
        (
            "maintenance ms per 1,000 changed orders (refresh: per 1,000 changes)",
            *(fmt(per_1000) for per_1000, _ in shares),
        )
    )
    rows.append(
        (
            "maintenance CPU ms per 1,000 changed orders (refresh: per 1,000 changes)",
            *(fmt(cpu_per_1000(w)) for w in windows),
        )
    )
    rows.append(("maintenance process CPU, share of one core, %", *(fmt(share) for _, share in shares)))
    compaction = (
        f"{overlay.compaction_s:.1f} s, {fmt(overlay.compaction_cpu_s)} s CPU"
        if overlay.compaction_s is not None
        else "did not run"
    )
    rows.append(("compaction (one refresh): duration, CPU time", "", "", compaction, ""))
    handover = overlay.handover
    rows.append(
        (
            "its overlay handover (orders changed while it ran): duration, orders",
            "",
            "",
            f"{handover[0]:.2f} s, {handover[1]:,} orders" if handover else "none",
            "",
        )
    )
    first = overlay.first_fold
    rows.append(
        (
            "first fold of the compaction's generation: duration, orders",
            "",
            "",
            f"{first[0]:.2f} s, {first[1]:,} orders" if first else "",
            "",
        )
    )
    steady_share, added_share = shares[1][1], compaction_share(overlay)
    rows.append(
        (
            f"maintenance CPU with a compaction every {conf.refresh_interval():g} s, share of one core, %",
            "",
            fmt(steady_share + added_share) if steady_share is not None and added_share is not None else "",
            "",
            "",
        )
    )
    by = {p.design: p for p in report.phases}
    rows.append(("changes written", f"{by['refresh'].changes:,}", f"{overlay.changes:,}", "", ""))
    rows.append(
        (
            "exactness checks (whole phase): mismatches / checks",
            *(f"{len(by[d].mismatches)} / {by[d].checks}" for d in PHASES),
            "",
            "",
        )
    )
    return rows
