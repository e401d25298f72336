"""A smoke test of the benchmark command at a tiny size: it runs, reports and cleans up.

Speed is never asserted here; the benchmark is a command (make bench).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

from tests.helpers import subprocess_env

MANAGE = str(Path(__file__).resolve().parent.parent / "manage.py")


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_bench_runs_at_a_tiny_size_in_its_own_database(tmp_path):
    scratch = f"{connection.settings_dict['NAME']}_smoke"
    report = tmp_path / "bench.json"
    markdown = tmp_path / "bench.md"
    proc = subprocess.run(
        [
            sys.executable,
            MANAGE,
            "bench",
            "--orders",
            "300,600",
            "--repeat",
            "1",
            "--database",
            scratch,
            "--json",
            str(report),
            "--markdown",
            str(markdown),
        ],
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads(report.read_text())
    sizes = {m["orders"] for m in data["measurements"]}
    assert sizes == {300, 600}
    approaches = {m["approach"] for m in data["measurements"] if m["group"] == "read, 0% changed"}
    assert {"subquery", "distinct on", "live", "snapshot", "realtime"} <= approaches
    page = next(
        m
        for m in data["measurements"]
        if (m["orders"], m["name"], m["approach"]) == (600, "page of 100", "snapshot")
    )
    assert page["speedup_vs_baseline"] is not None and page["median"] > 0
    assert any(t["target"].startswith("change-log trigger") for t in data["targets"])
    assert "| orders | target | met | measured |" in markdown.read_text()
    assert "Targets (issue #7)" in proc.stdout
    # The user's database was never touched, and the scratch one is gone.
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM reporting_order")
        assert cursor.fetchone()[0] == 0
        cursor.execute("SELECT count(*) FROM pg_database WHERE datname = %s", [scratch])
        assert cursor.fetchone()[0] == 0


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_bench_steady_runs_both_designs_and_a_compaction_at_a_tiny_size(tmp_path):
    scratch = f"{connection.settings_dict['NAME']}_steady_smoke"
    markdown = tmp_path / "steady.md"
    proc = subprocess.run(
        [
            sys.executable,
            MANAGE,
            "bench",
            "--steady",
            "--orders",
            "2000",
            "--rate",
            "50",
            "--seconds",
            "4",
            "--refresh-interval",
            "1",
            "--database",
            scratch,
            "--markdown",
            str(markdown),
        ],
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = markdown.read_text()
    assert "| measurement | refresh design | overlay design | overlay, during a compaction |" in text
    rows = {line.split(" | ")[0].lstrip("| "): line for line in text.splitlines() if line.startswith("| ")}
    # Both designs read, folded and checked; the compaction ran and was timed.
    assert "| 0 / " in rows["exactness checks (whole phase): mismatches / checks"]
    assert (
        "s CPU" in rows["compaction (one refresh): duration, CPU time"]
        or "s, " in (rows["compaction (one refresh): duration, CPU time"])
    )
    # A tiny compaction may finish before the reader reads: its column may be empty.
    page = [cell.strip() for cell in rows["realtime page of 100 (selector), ms p50"].strip()[1:-1].split("|")]
    assert len(page) == 4 and all(page[1:3]), page
    assert "no errors in the run" not in text
    assert "| 0 mismatches between realtime and live | met |" in text
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_database WHERE datname = %s", [scratch])
        assert cursor.fetchone()[0] == 0
