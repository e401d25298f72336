"""What several test modules share: connections of their own, subprocess settings, waits, declarations,
the scheduler in a process of its own and a headless browser."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MANAGE = str(ROOT / "manage.py")
# Screenshots of the browser tests, kept by CI.
ARTIFACTS = ROOT / "artifacts"

_EXAMPLE_FACTOR = {"ci": 1, "thorough": 10}


def examples(count: int) -> int:
    """``count`` examples in CI, ten times more under ``HYPOTHESIS_PROFILE=thorough``.

    For tests that set their own ``max_examples`` (a profile's own number does
    not apply to them).
    """
    return count * _EXAMPLE_FACTOR.get(os.environ.get("HYPOTHESIS_PROFILE", "ci"), 1)


# A spare alias for the replica test (tests/test_replica.py points it at a hot
# standby it starts). Declared up front because Django's test isolation only
# lets a test use aliases that exist when it starts; a mirror of the default
# database, so nothing is created or flushed for it.
REPLICA_ALIAS = "replica"


def raw_connect(*, autocommit: bool = True, **overrides):
    """A psycopg connection of its own to the test database, outside Django's.

    Args:
        autocommit: the connection's autocommit mode.
        overrides: libpq parameters to change, such as ``user`` and ``password``.
    """
    import psycopg
    from django.db import connection

    params = connection.get_connection_params()
    for django_only in ("cursor_factory", "context", "prepare_threshold"):
        params.pop(django_only, None)
    return psycopg.connect(autocommit=autocommit, **{**params, **overrides})


def subprocess_env() -> dict[str, str]:
    """Environment for a ``manage.py`` subprocess that uses the test database."""
    from django.db import connection

    env = dict(os.environ)
    name = connection.settings_dict["NAME"]
    if env.get("DATABASE_URL"):
        from urllib.parse import urlsplit, urlunsplit

        env["DATABASE_URL"] = urlunsplit(urlsplit(env["DATABASE_URL"])._replace(path=f"/{name}"))
    else:
        env["REPORTING_EMBEDDED_DB_NAME"] = name
    return env


@contextlib.contextmanager
def extra_connection(alias: str, **overrides):
    """A Django database alias of its own, to the test database with other settings.

    For reads as another user, or against a server that is not there. It uses
    Django's plain PostgreSQL backend, whatever the default one is.

    Args:
        alias: the new alias's name.
        overrides: settings to change, such as ``USER``, ``PASSWORD``, ``HOST`` and ``PORT``.
    """
    from django.db import connection, connections
    from django.db.backends.postgresql.base import DatabaseWrapper

    params = connection.get_connection_params()
    settings_dict = {
        **connection.settings_dict,
        "ENGINE": "django.db.backends.postgresql",
        "HOST": str(params.get("host") or ""),
        "PORT": str(params.get("port") or ""),
        "USER": params.get("user") or connection.settings_dict["USER"],
        **overrides,
    }
    wrapper = DatabaseWrapper(settings_dict, alias)
    connections[alias] = wrapper
    try:
        yield wrapper
    finally:
        wrapper.close()
        del connections[alias]


# The JSON API's endpoints that every reader may call (tests of their auth and methods).
ENDPOINTS = ["api-status-counts", "api-orders", "api-orders-csv", "api-freshness"]


def api_get(client, name: str, **params):
    """A GET of the URL named ``name`` with ``params`` as its query."""
    from django.urls import reverse

    return client.get(reverse(name), params)


def wait_until(predicate, *, timeout: float, what: str) -> None:
    """Poll ``predicate`` until it is true, or fail naming ``what``; a fresh connection each poll
    (the server may have restarted), a database error meaning not yet."""
    from django.db import Error as DatabaseError
    from django.db import connection

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        connection.close()  # a fresh connection each poll: the server may have restarted
        try:
            if predicate():
                return
        except DatabaseError:  # the database may be down for a moment
            pass
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@contextlib.contextmanager
def scheduler_process(tmp_path: Path, env: dict[str, str]) -> Iterator[subprocess.Popen]:
    """``run_scheduler`` in a process of its own, its output in ``tmp_path/scheduler.log``.

    Leaving the block sends SIGTERM, on which it must exit 0; an error in the block kills it.
    """
    log = (tmp_path / "scheduler.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, MANAGE, "run_scheduler"], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        yield proc
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()


def _browser_or_skip() -> tuple[str, str]:
    import pytest

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if chromium and driver:
        return chromium, driver
    message = (
        "needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver; .ci/run does)"
    )
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@contextlib.contextmanager
def chromium_browser(width: int = 1400, height: int = 1100) -> Iterator[Any]:
    """Debian's headless Chromium through Selenium, with a profile of its own; skipped without it."""
    chromium, driver_path = _browser_or_skip()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-dev-shm-usage",
        f"--window-size={width},{height}",
        "--no-first-run",
    ):
        options.add_argument(flag)
    profile = tempfile.mkdtemp(prefix="chromium-")
    options.add_argument(f"--user-data-dir={profile}")
    browser = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    # Chromium keeps a window at least 500 px wide; a phone's width needs the viewport set.
    browser.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 760},
    )
    try:
        yield browser
    finally:
        browser.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait_for_sql(sql: str, params=None, *, what: str, timeout: float = 20, interval: float = 0.03) -> None:
    """Poll ``sql`` on a connection of its own until its first column is true, or fail naming ``what``.

    For a test that waits on another session's state (``pg_stat_activity``, ``pg_locks``).
    """
    deadline = time.monotonic() + timeout
    with raw_connect() as conn:
        while time.monotonic() < deadline:
            row = conn.execute(sql, params).fetchone()
            if row and row[0]:
                return
            time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


def sync_views() -> None:
    """Rebuild the reporting views over the generated ones, as migrate's view sync does."""
    from django_pgviews.models import ViewSyncer

    ViewSyncer().run(force=True, update=True, materialized_views_check_sql_changed=True, using="default")


@contextlib.contextmanager
def declared(settings, declaration: dict):
    """``declaration`` as ``REPORTING_SOURCE``, installed and the views rebuilt over it as migrate
    would; the example's declaration again afterwards, installed the same way."""
    from reporting import source_install

    example = settings.REPORTING_SOURCE
    settings.REPORTING_SOURCE = declaration
    try:
        assert source_install.source_install()
        sync_views()
        yield
    finally:
        settings.REPORTING_SOURCE = example
        source_install.source_install()
        sync_views()


TICKETS_DDL = """
CREATE TABLE ticket (id integer PRIMARY KEY, opened timestamptz NOT NULL);
CREATE TABLE ticket_event (
    id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ticket_id integer NOT NULL REFERENCES ticket (id),
    at timestamptz NOT NULL,
    state text NOT NULL
);
CREATE INDEX ticket_event_latest ON ticket_event (ticket_id, at DESC, id DESC);
"""
# Eleven states, some long, none the example's: a twelve-column legend, a wide table of times.
TICKET_STATES = [
    "new",
    "triaged",
    "waiting_for_customer_reply",
    "in_progress",
    "escalated_to_second_level",
    "on_hold",
    "resolved",
    "reopened",
    "closed",
    "cancelled_by_requester",
    "merged_into_another_ticket",
]
TICKETS = {
    "history": "public.ticket_event",
    "key": "ticket_id",
    "latest_by": ["-at", "-id"],
    "status": "state",
    "statuses": TICKET_STATES,
    "parent": "public.ticket",  # no model: "ticket" and "tickets" come from the table's name
    "parent_key": "id",
    "parent_created": "opened",
}


@contextlib.contextmanager
def ticket_desk(settings, *, tickets: int = 40, seed: int = 5):
    """A support desk declared as the source and refreshed: ``tickets`` tickets opened and moved
    through random states over the last twenty days, and one without any event; dropped after.

    Needs a test with ``transaction=True`` (the refresh commits).
    """
    import datetime as dt
    import random

    from django.db import connection
    from django.utils import timezone

    from reporting import services
    from reporting.choices import RefreshOutcome

    rng = random.Random(seed)
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(TICKETS_DDL)
        for ticket in range(1, tickets + 1):
            opened = now - dt.timedelta(hours=rng.randint(30, 24 * 20))
            cursor.execute("INSERT INTO ticket VALUES (%s, %s)", [ticket, opened])
            at = opened
            for state in ["new", *rng.sample(TICKET_STATES[1:], rng.randint(0, 4))]:
                cursor.execute(
                    "INSERT INTO ticket_event (ticket_id, at, state) VALUES (%s, %s, %s)", [ticket, at, state]
                )
                at += dt.timedelta(minutes=rng.randint(5, 2000))
        cursor.execute("INSERT INTO ticket VALUES (%s, %s)", [tickets + 1, now])
    try:
        with declared(settings, TICKETS):
            assert services.views_refresh(force=True).outcome == RefreshOutcome.OK
            yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE ticket_event, ticket")


@contextlib.contextmanager
def writes_during_compaction(before: Any, after: Any = None) -> Iterator[None]:
    """Run ``before`` and ``after`` while a compaction's transaction is open, each in a thread (so
    on a connection of its own, committed), around its overlay handover: ``before`` writes what the
    compaction's views miss and the handover must carry, ``after`` what the new tail holds when it
    commits. What they raise is raised here."""
    import threading
    from unittest import mock

    from django.db import connection

    from reporting.services import refresh

    real = refresh.overlay_handover

    def in_thread(work: Any) -> None:
        errors: list[BaseException] = []

        def target() -> None:
            try:
                work()
            except BaseException as exc:  # raised again in the caller
                errors.append(exc)
            finally:
                connection.close()

        thread = threading.Thread(target=target)
        thread.start()
        thread.join(timeout=60)
        assert not thread.is_alive(), "writes during the compaction hung (a lock it holds?)"
        if errors:
            raise errors[0]

    def handover(*args: Any, **kwargs: Any) -> Any:
        in_thread(before)
        result = real(*args, **kwargs)
        if after is not None:
            in_thread(after)
        return result

    with mock.patch.object(refresh, "overlay_handover", handover):
        yield
