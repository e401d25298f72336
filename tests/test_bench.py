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

from tests.conftest import subprocess_env

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
