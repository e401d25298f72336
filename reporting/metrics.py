"""Prometheus metrics: what an operator alerts on.

Two sources:

* Counters and histograms kept by the processes that do the work: the
  scheduler counts refresh runs by outcome, times them, and counts what the BI
  watchdog stopped (on its own port, ``REPORTING_SCHEDULER_METRICS_PORT``); web
  processes time API requests. Under gunicorn, with ``PROMETHEUS_MULTIPROC_DIR``
  set (``make serve`` sets it), the workers' figures are added up.
* The state of the reporting data, read from PostgreSQL when ``/metrics`` is
  scraped (:class:`ReportingStateCollector`), so every web process reports the
  same: how old the exact state is, changes pending, the last successful
  refresh, whether the refresh lock is held, whether reads recompute everything.

Alert rules we recommend are in docs/operations.md ("Metrics").
"""

from __future__ import annotations

__all__ = [
    "API_REQUEST_SECONDS",
    "AUDIT_KEYS_CHECKED",
    "AUDIT_MISMATCHES",
    "AUDIT_SECONDS",
    "INSTALL",
    "REFRESH_RUNS",
    "REFRESH_SECONDS",
    "WATCHDOG_ACTIONS",
    "ReportingStateCollector",
    "available",
    "exposition",
    "serve",
]

import logging
import os
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from reporting import selectors
from reporting.choices import RefreshOutcome

if TYPE_CHECKING:
    from prometheus_client.core import GaugeMetricFamily

try:
    import prometheus_client
except ImportError:  # the metrics extra is not installed: nothing is measured, /metrics says so
    prometheus_client = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)

# What to run for metrics, in every message that says they are off.
INSTALL = "pip install 'order-status-reporting[metrics]'"


def available() -> bool:
    """Whether prometheus-client (the ``metrics`` extra) is installed."""
    return prometheus_client is not None


class _Unmeasured:
    """A counter or histogram without prometheus-client: it takes every call and keeps nothing."""

    def labels(self, *values: str) -> _Unmeasured:
        return self

    def inc(self, amount: float = 1) -> None:
        pass

    def observe(self, amount: float) -> None:
        pass


def _counter(name: str, documentation: str, labels: Sequence[str] = ()) -> Any:
    if prometheus_client is None:
        return _Unmeasured()
    return prometheus_client.Counter(name, documentation, labels)


def _histogram(name: str, documentation: str, labels: Sequence[str] = (), *, buckets: Sequence[float]) -> Any:
    if prometheus_client is None:
        return _Unmeasured()
    return prometheus_client.Histogram(name, documentation, labels, buckets=buckets)


REFRESH_RUNS = _counter("reporting_refresh_runs", "Refresh runs of this process, by outcome.", ["outcome"])
REFRESH_SECONDS = _histogram(
    "reporting_refresh_duration_seconds",
    "How long refreshes that refreshed (outcome ok) took.",
    buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800),
)
FOLD_SECONDS = _histogram(
    "reporting_fold_duration_seconds",
    "How long folds of the change log into the overlay took.",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
FOLDED_ORDERS = _counter("reporting_folded_orders", "Orders folded into the overlay by this process.")
WATCHDOG_ACTIONS = _counter(
    "reporting_bi_watchdog_actions",
    "BI statements the watchdog cancelled and BI sessions it ended.",
    ["action"],
)
# The exactness audit (counted by the scheduler that runs it; its latest run is
# read from the database at each scrape, below).
AUDIT_KEYS_CHECKED = _counter(
    "reporting_audit_keys_checked", "Keys whose real-time latest row the exactness audit compared."
)
AUDIT_MISMATCHES = _counter(
    "reporting_audit_mismatches",
    "Keys the exactness audit found different from the history in real-time reads (then recomputed).",
)
AUDIT_SECONDS = _histogram(
    "reporting_audit_duration_seconds",
    "How long exactness audits took.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
API_REQUEST_SECONDS = _histogram(
    "reporting_api_request_duration_seconds",
    "API requests by endpoint and HTTP status.",
    ["endpoint", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)

for outcome in RefreshOutcome.values:  # every outcome from the start, at 0
    REFRESH_RUNS.labels(outcome)


class ReportingStateCollector:
    """The state of the reporting data, read from the database at each scrape.

    Args:
        close_connections: close this thread's database connections after each
            scrape; for a metrics server that answers each scrape in a new thread.
    """

    def __init__(self, *, close_connections: bool = False) -> None:
        self.close_connections = close_connections

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            yield from self._collect()
        finally:
            if self.close_connections:
                from django.db import connections

                connections.close_all()

    def _collect(self) -> Iterator[GaugeMetricFamily]:
        from prometheus_client.core import GaugeMetricFamily

        up = GaugeMetricFamily("reporting_database_up", "Whether the reporting database answered.")
        try:
            fresh = selectors.freshness(runs=0)
            holder = selectors.refresh_lock_holder()
        except Exception as exc:  # a scrape must not fail: it says the database is down instead
            logger.warning("Metrics: the reporting database did not answer: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        if fresh.age is not None:
            yield GaugeMetricFamily(
                "reporting_state_age_seconds",
                "How long ago the reporting views were last known exact (refresh or check).",
                value=fresh.age.total_seconds(),
            )
        if fresh.changes_since is not None:
            yield GaugeMetricFamily(
                "reporting_changes_pending",
                "Rows written to the source tables since the views' refresh.",
                value=fresh.changes_since,
            )
        if fresh.folded_at is not None:
            yield GaugeMetricFamily(
                "reporting_fold_age_seconds",
                "Age of the latest fold; real-time reads recompute what changed since it.",
                value=(fresh.checked_at - fresh.folded_at).total_seconds(),
            )
        yield GaugeMetricFamily(
            "reporting_overlay_orders",
            "Orders changed since the views' refresh, held in the overlay (a refresh empties it).",
            value=fresh.overlay_orders,
        )
        if fresh.snapshot_at is not None:
            yield GaugeMetricFamily(
                "reporting_last_refresh_success_timestamp_seconds",
                "When the latest successful refresh took its snapshot (Unix time).",
                value=fresh.snapshot_at.timestamp(),
            )
        if fresh.as_of is not None:
            undeclared = GaugeMetricFamily(
                "reporting_undeclared_status_orders",
                "Orders whose latest status is a value REPORTING_SOURCE['statuses'] does not list.",
                labels=["status"],
            )
            # At most MAX_UNDECLARED_SERIES values, the most common: a label per value.
            found = sorted(selectors.undeclared_status_counts().items(), key=lambda kv: (-kv[1], kv[0]))
            for status, n in found[:MAX_UNDECLARED_SERIES]:
                undeclared.add_metric([status], n)
            yield undeclared
        audit = selectors.audit_last()
        if audit is not None:
            yield GaugeMetricFamily(
                "reporting_audit_last_run_timestamp_seconds",
                "When the latest exactness audit finished (Unix time).",
                value=audit.finished.timestamp(),
            )
            yield GaugeMetricFamily(
                "reporting_audit_age_seconds",
                "How long ago the latest exactness audit finished.",
                value=max(0.0, (fresh.checked_at - audit.finished).total_seconds()),
            )
            yield GaugeMetricFamily(
                "reporting_audit_last_mismatches",
                "Keys the latest exactness audit found wrong (not 0: /readyz degraded until one finds none).",
                value=audit.mismatches,
            )
        yield GaugeMetricFamily(
            "reporting_change_log_triggers_ok",
            "Whether every change-log trigger fires on every write (0: writes are missed until mended).",
            value=int(not selectors.change_log_check()),
        )
        yield GaugeMetricFamily(
            "reporting_refresh_lock_held",
            "Whether a session holds the refresh lock.",
            value=int(bool(holder)),
        )


# Each undeclared value is a series of its own: a history full of typos must not
# flood the metrics store.
MAX_UNDECLARED_SERIES = 20


def exposition() -> tuple[bytes, str]:
    """The metrics of this process (or of all gunicorn workers) and of the reporting data, as text.

    Raises:
        ImproperlyConfigured: prometheus-client is not installed (see :func:`available`).
    """
    if prometheus_client is None:
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured(f"Prometheus metrics need the metrics extra: {INSTALL}")
    from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        MultiProcessCollector(registry)
        body = generate_latest(registry)
    else:
        body = generate_latest(REGISTRY)
    state = CollectorRegistry()
    state.register(ReportingStateCollector())  # type: ignore[arg-type]  # a collector by its collect()
    return body + generate_latest(state), CONTENT_TYPE_LATEST


def serve(address: str, port: int) -> bool:
    """Serve this process's metrics and the reporting state at ``http://address:port/metrics`` (a thread).

    Returns:
        Whether it serves them: not without prometheus-client (the ``metrics`` extra).
    """
    if prometheus_client is None:
        return False
    from prometheus_client import REGISTRY, start_http_server

    REGISTRY.register(ReportingStateCollector(close_connections=True))  # type: ignore[arg-type]
    start_http_server(port, addr=address, registry=REGISTRY)
    return True
