from __future__ import annotations

import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from examples.shop.models import Order, OrderStatus
from reporting import selectors
from reporting.models import OrderLatestStatus
from tests.helpers import raw_connect


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db(transaction=True)
def test_demo_seeds_an_empty_database_and_shows_matching_counts():
    output = run("demo", "--orders", "400")
    assert Order.objects.count() == 400
    assert "Counts match between the strategies." in output
    assert "Last cancelled, live" in output
    assert "Last cancelled, snapshot" in output
    assert "Last cancelled, realtime" in output
    assert OrderLatestStatus.objects.count() == 400, "demo refreshes the view"
    assert "4. A shop at work: 400 orders changed status" in output
    assert "fold (ok): 400 orders into the overlay" in output
    assert "realtime matches live" in output
    # A second run keeps the data it finds, and writes nothing to it.
    statuses = OrderStatus.objects.count()
    again = run("demo", "--orders", "400")
    assert "orders already present" in again and "A shop at work" not in again
    assert (Order.objects.count(), OrderStatus.objects.count()) == (400, statuses)


@pytest.mark.django_db(transaction=True)
def test_seed_orders_and_refresh_views():
    assert "Seeded 250 orders (ids 1-250)" in run("seed_orders", "--orders", "250", "--seed", "3")
    assert "ok: reporting.order_latest_status" in run("refresh_views")
    assert OrderLatestStatus.objects.count() == 250
    assert "ok: reporting.order_latest_status" in run("refresh_views", "--no-concurrently", "--force")


@pytest.mark.django_db
@pytest.mark.parametrize("value", ["0", "-5", "many"])
def test_seed_orders_refuses_a_bad_count(value):
    with pytest.raises(CommandError, match="--orders"):
        run("seed_orders", "--orders", value)
    assert not Order.objects.exists()


@pytest.mark.django_db
def test_demo_refuses_a_bad_count():
    with pytest.raises(CommandError, match="--orders"):
        run("demo", "--orders", "0")
    assert not Order.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_demo_compares_the_strategies_in_one_snapshot_while_something_writes(monkeypatch):
    run("demo", "--orders", "300")
    counts = selectors.order_status_counts
    writes = {"n": 0}

    def counts_then_a_write(**kwargs):
        # Another session commits a new order with a status after each count the demo reads.
        result = counts(**kwargs)
        with raw_connect() as writer:
            order = writer.execute(
                "INSERT INTO reporting_example_order (created) VALUES (now()) RETURNING id"
            ).fetchone()
            writer.execute(
                "INSERT INTO reporting_example_orderstatus (order_id, created, status) VALUES (%s, "
                "now(), 'cancelled')",
                order,
            )
        writes["n"] += 1
        return result

    monkeypatch.setattr(selectors, "order_status_counts", counts_then_a_write)
    output = run("demo", "--orders", "300")
    assert writes["n"] == 3
    assert "live and realtime match" in output or "Counts match between the strategies." in output
    assert Order.objects.count() == 303


@pytest.mark.django_db
def test_the_models_and_the_migrations_agree():
    # makemigrations --check exits non-zero when a model change has no migration.
    run("makemigrations", "--check", "--dry-run")


@pytest.mark.django_db
@pytest.mark.parametrize("value", ["-1", "abc", "nan"])
def test_reporting_status_refuses_a_bad_max_age_in_plain_words(value):
    with pytest.raises(CommandError, match="expected a number of seconds, 0 or more"):
        run("reporting_status", "--max-age", value)


MANAGE = str(Path(__file__).resolve().parent.parent / "manage.py")
PRODUCTION_ENV = Path(__file__).resolve().parent.parent / "docs" / "deploy" / "env.example"


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    return subprocess.run(
        [sys.executable, MANAGE, *args], env={**clean, **env}, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(
    "env",
    [
        {"DJANGO_ENV": "production"},
        {"DJANGO_ENV": "production", "DJANGO_SECRET_KEY": "insecure-local-only-key-change-me"},
        {"DJANGO_ENV": "production", "DJANGO_SECRET_KEY": "short"},
    ],
)
def test_production_refuses_to_start_without_a_secret_key_of_its_own(env):
    done = manage("check", **env)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "error: DJANGO_ENV=production needs DJANGO_SECRET_KEY: 50 or more random characters of its own, "
        "e.g. python -c 'import secrets; print(secrets.token_urlsafe(50))'"
    ]


def test_the_documented_production_settings_pass_check_deploy():
    env = dict(
        line.split("=", 1)
        for line in PRODUCTION_ENV.read_text().splitlines()
        if line and not line.startswith("#")
    )
    env.pop("DATABASE_URL")  # check --deploy needs no database; the test's own is used
    env["DJANGO_SECRET_KEY"] = "x" * 20 + "-a-key-of-its-own-for-this-test-" + "y" * 20
    done = manage("check", "--deploy", "--fail-level", "WARNING", **env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "System check identified no issues" in done.stdout


def test_a_malformed_setting_is_one_line():
    done = manage("check", DJANGO_ENV="staging")
    assert done.returncode == 1
    assert done.stderr.strip() == "error: DJANGO_ENV must be development or production, not 'staging'"


def test_the_example_commands_live_in_the_example_app_and_the_reporting_app_ships_none_of_them():
    """pip ships ``reporting`` and ``scheduler``, not ``examples``: a command of the example there
    fails at import in a user's project (the bench), or gives it a user with a known password."""
    from django.core.management import get_commands

    commands = get_commands()
    for name in ("bench", "demo", "demo_user", "seed_orders"):
        assert commands[name] == "examples.shop", f"{name} comes from {commands[name]}"
    shipped = {name for name, app in commands.items() if app in ("reporting", "scheduler")}
    assert shipped == {
        "api_token",
        "bi_role",
        "db_server",
        "refresh_views",
        "reporting_sql",
        "reporting_status",
        "run_scheduler",
    }, shipped
    import reporting

    assert not (Path(reporting.__file__).parent / "bench").exists(), "the bench is the example's"
