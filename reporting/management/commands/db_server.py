from __future__ import annotations

import signal
import threading
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from reporting import embedded_db


class Command(BaseCommand):
    help = (
        "Run the embedded PostgreSQL in the foreground until Ctrl-C (or SIGTERM), so that BI tools and "
        "psql can reach it while no other manage.py process runs. REPORTING_EMBEDDED_TCP_PORT adds a "
        "TCP listener on 127.0.0.1."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        if not embedded_db.server_in_use():
            engine = connection.settings_dict["ENGINE"]
            raise CommandError(
                "db_server runs the embedded server only, and the default database is not on it "
                f"(ENGINE {engine!r}, for example from DATABASE_URL)"
            )
        stop = threading.Event()
        previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            try:
                # Never restarts a server that others use for TCP: it says how to get TCP instead.
                embedded_db.server(tcp_required=True)
            except embedded_db.ServerInUseError as exc:
                raise CommandError(str(exc)) from exc
            connection.ensure_connection()  # starts the server, and creates the database if needed
            connection.close()
            info = embedded_db.server().get_postmaster_info()
            name = connection.settings_dict["NAME"]
            self.stdout.write(f"embedded PostgreSQL running, database {name!r}")
            self.stdout.write(f"  unix socket: host={info.socket_dir} port={info.port}")
            if embedded_db.tcp_port() is not None:
                self.stdout.write(
                    f"  TCP:         host=127.0.0.1 port={info.port} (BI roles, with their password)"
                )
            else:
                self.stdout.write(
                    "  TCP:         off (set REPORTING_EMBEDDED_TCP_PORT to listen on 127.0.0.1)"
                )
            self.stdout.write("Ctrl-C stops it (once no other manage.py process uses it).")
            self.stdout.flush()
            stop.wait()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        embedded_db.stop()
        self.stdout.write("stopped")
