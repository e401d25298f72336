"""The deploy measurement of ``manage.py bench --deploy``: readers while a view's SQL changes.

A reader thread reads in turn a real-time page and real-time counts through the
selectors and a page of the BI view ``order_latest_status_live`` in plain SQL,
timing each read and counting failures, in three phases: before the deploy,
during it, and after it. The deploy changes the SQL of ``order_latest_status``
(a condition that changes no answer) and is made in two ways, one after the
other in the same run: pgviews-redux's own sync (what ``migrate`` did before:
``DROP ... CASCADE`` and a rebuild under an exclusive lock), and the app's
deploy (built beside, swapped in: ``reporting.services.view_deploy``).
"""

from __future__ import annotations

__all__ = ["bench_deploy"]

import math
import threading
import time
from collections.abc import Callable
from typing import Any

from django.db import connections
from django_pgviews.models import ViewSyncer

from examples.shop.bench.cases import fetchall
from reporting import matviews, selectors, services
from reporting.services.view_deploy import views_deploy
from reporting.sql_files import in_schema

PHASES = ("before", "during", "after")
BI_PAGE = in_schema(
    "SELECT order_id, status_created FROM reporting.order_latest_status_live WHERE status = 'cancelled' "
    "ORDER BY status_created DESC, order_id DESC LIMIT 100"
)
DEPLOY_READS: dict[str, Callable[[], Any]] = {
    "realtime page of 100 (selector)": lambda: selectors.order_list_by_status(
        status="cancelled", strategy="realtime", limit=100
    ),
    "realtime counts (selector)": lambda: selectors.order_status_counts(strategy="realtime"),
    "BI _live page of 100 (SQL)": lambda: fetchall(BI_PAGE),
}


class _Reader:
    """Reads in a loop on a connection of its own, recording (phase, read, ms, failed)."""

    def __init__(self) -> None:
        self.phase = PHASES[0]
        self.records: list[tuple[str, str, float, bool]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            while not self.stop.is_set():
                for name, read in DEPLOY_READS.items():
                    phase, started, failed = self.phase, time.perf_counter(), False
                    try:
                        read()
                    except Exception:  # a failed read is what this counts
                        failed = True
                    self.records.append((phase, name, (time.perf_counter() - started) * 1000, failed))
        finally:
            connections.close_all()


def _pgviews_sync() -> None:
    """What ``migrate`` ran on its own before the app deployed views: pgviews-redux's sync."""
    ViewSyncer().run(force=True, update=True, materialized_views_check_sql_changed=True, using="default")


def _swap() -> None:
    views_deploy()


def _p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)]


def bench_deploy(add, orders: int, change: Callable[[], int], phase_seconds: float, progress) -> None:
    """Both deploys of one view change, each under a reader; see the module."""
    view = matviews.OrderLatestStatusView
    original = view.sql
    changed = f"SELECT * FROM ({original}) AS changed WHERE changed.order_id IS NOT NULL"  # noqa: S608
    designs = (
        ("drop and rebuild (pgviews-redux's sync)", _pgviews_sync),
        ("built beside, swapped in", _swap),
    )
    try:
        for design, deploy in designs:
            # The same start for both: the views as their files say, refreshed, and
            # 0.1 % of the orders changed since and folded, as the scheduler keeps them.
            view.sql = original
            views_deploy()
            services.views_refresh(force=True)
            change()
            services.overlay_fold()
            view.sql = changed
            reader = _Reader()
            reader.thread.start()
            progress(f"{orders:,} orders: deploy, {design}: before")
            time.sleep(phase_seconds)
            reader.phase = "during"
            progress(f"{orders:,} orders: deploy, {design}: during")
            started = time.perf_counter()
            deploy()
            took = (time.perf_counter() - started) * 1000
            reader.phase = "after"
            progress(f"{orders:,} orders: deploy, {design}: after")
            time.sleep(phase_seconds)
            reader.stop.set()
            reader.thread.join()
            group = f"deploy, {design}"
            add(group, "the deploy", "duration", [took])
            for name in DEPLOY_READS:
                for phase in PHASES:
                    records = [r for r in reader.records if r[0] == phase and r[1] == name]
                    ok = [ms for _, _, ms, failed in records if not failed]
                    failures = float(sum(failed for *_, failed in records))
                    add(group, f"{name}, {phase}", "failed reads", [failures], unit="reads")
                    if ok:
                        add(group, f"{name}, {phase}", "ms", ok)
                        add(group, f"{name}, {phase}", "ms p99", [_p99(ok)])
    finally:
        view.sql = original
        views_deploy()
        services.views_refresh(force=True)
