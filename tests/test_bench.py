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
        cursor.execute("SELECT count(*) FROM reporting_example_order")
        assert cursor.fetchone()[0] == 0
        cursor.execute("SELECT count(*) FROM pg_database WHERE datname = %s", [scratch])
        assert cursor.fetchone()[0] == 0


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_bench_deploy_measures_both_deploys_under_a_reader(tmp_path):
    scratch = f"{connection.settings_dict['NAME']}_deploy"
    report = tmp_path / "bench.json"
    proc = subprocess.run(
        [
            sys.executable,
            MANAGE,
            "bench",
            "--orders",
            "2000",
            "--deploy",
            "1",
            "--database",
            scratch,
            "--json",
            str(report),
        ],
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    measured = {
        (m["group"], m["name"], m["approach"]): m for m in json.loads(report.read_text())["measurements"]
    }
    swap = "deploy, built beside, swapped in"
    for phase in ("before", "during", "after"):
        for read in ("realtime page of 100 (selector)", "BI _live page of 100 (SQL)"):
            assert measured[(swap, f"{read}, {phase}", "failed reads")]["median"] == 0, (read, phase)
    assert measured[(swap, "the deploy", "duration")]["median"] > 0
    # The other deploy, side by side in the same run (how many reads it fails depends on timing).
    old = "deploy, drop and rebuild (pgviews-redux's sync)"
    assert (old, "realtime counts (selector), during", "failed reads") in measured


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
            "--after-seconds",
            "3",
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
    assert (
        "| measurement | refresh design | overlay design | overlay, during a compaction | overlay, after it |"
        in text
    )
    rows = {line.split(" | ")[0].lstrip("| "): line for line in text.splitlines() if line.startswith("| ")}
    # Both designs read, folded and checked; the compaction ran and was timed.
    assert "| 0 / " in rows["exactness checks (whole phase): mismatches / checks"]
    assert (
        "s CPU" in rows["compaction (one refresh): duration, CPU time"]
        or "s, " in (rows["compaction (one refresh): duration, CPU time"])
    )
    # The compaction handed what changed while it ran (maybe nothing, at this size) to its overlay.
    assert " orders |" in rows["its overlay handover (orders changed while it ran): duration, orders"]
    # A tiny compaction may finish before the reader reads: its column may be empty.
    page = [cell.strip() for cell in rows["realtime page of 100 (selector), ms p50"].strip()[1:-1].split("|")]
    assert len(page) == 5 and all(page[1:3]) and page[4], page
    assert "no errors in the run" not in text
    assert "| 0 mismatches between realtime and live | met |" in text
    # The overlay phase's reads split by when they started around the compaction:
    # before it, and after its commit (the reads of its new generation).
    assert "**Reads around the compaction (overlay design), by when they started**" in text
    before = rows["before the compaction"].strip(" |").split(" | ")
    assert int(before[2]) > 0 and all(" / " in cell for cell in before[3:7]), before
    after = [row for name, row in rows.items() if "after that fold" in name or "after it and later" in name]
    assert after or "its commit to the first fold of its generation" in rows, text
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_database WHERE datname = %s", [scratch])
        assert cursor.fetchone()[0] == 0


def test_targets_are_judged_from_the_measurements_and_both_renderings_show_the_same_verdicts():
    from io import StringIO

    from rich.console import Console

    from examples.shop import bench
    from examples.shop.bench.runner import Measurement

    results = bench.BenchResults(
        config=bench.BenchConfig(sizes=[1000, 2000]),
        machine={"cpus": 2, "platform": "test", "python": "3", "postgresql": "18", "embedded": True},
    )
    for orders, peak in ((1000, 10.0), (2000, 70.0)):
        results.measurements += [
            Measurement(orders, "read, 0% changed", "page of 100", "subquery", [1000.0, 1000.0]),
            Measurement(
                orders, "read, 0% changed", "page of 100", "snapshot", [1.0, 3.0], baseline="subquery"
            ),
            Measurement(orders, "writes", f"{orders:,} rows in one INSERT", "with trigger", [12.0]),
            Measurement(orders, "writes", f"{orders:,} rows in one INSERT", "without trigger", [10.0]),
            Measurement(orders, "csv export", "cancelled orders", "peak Python memory", [peak], unit="MiB"),
        ]
    report = bench.one_shot_report(results)
    verdicts = {t.target.split(":")[0]: (t.met, t.figure, t.orders) for t in report.targets}
    # Judged at the largest size: 1000 / 2 = 500x is met; the trigger's +20 % is under 25 %.
    assert verdicts["page of 100"] == (True, "500.0x (2.00 ms vs 1,000 ms)", 2000), verdicts
    assert verdicts["change-log trigger"] == (True, "+20%", 2000), verdicts
    # 60 MiB apart across sizes: not flat.
    assert verdicts["CSV export"][0] is False, verdicts
    # Targets whose figures were not measured are left out, not judged.
    assert not any("counts per status" in t.target for t in report.targets)
    text = bench.markdown(report)
    out = StringIO()
    bench.print_report(report, Console(file=out, width=300, color_system=None))
    for t in report.targets:
        met = {True: "met", False: "not met", None: "reported"}[t.met]
        assert f"| {t.target} | {'**not met**' if t.met is False else met} | {t.figure} |" in text
        assert t.target in out.getvalue() and t.figure in out.getvalue()
