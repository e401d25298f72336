"""A Django database backend: PostgreSQL, on the embedded server.

It is Django's own PostgreSQL backend with one change: before connecting, it
starts (or reuses) the embedded server and points libpq at its socket. The
settings select it only when ``DATABASE_URL`` is unset.
"""

from __future__ import annotations

__all__ = ["DatabaseClient", "DatabaseWrapper"]

from collections.abc import Iterable
from typing import Any

from django.db.backends.postgresql import base, client

from reporting import embedded_db

# Django loads this module when a project selects the engine: without the
# embedded extra, that is where it learns what to install, not at its first query.
embedded_db.require()


class DatabaseClient(client.DatabaseClient):
    """``manage.py dbshell`` with the psql that ships with the embedded server."""

    @classmethod
    def settings_to_cmd_args_env(
        cls, settings_dict: dict[str, Any], parameters: Iterable[str]
    ) -> tuple[list[str], dict[str, str] | None]:
        params = embedded_db.connection_params(settings_dict["NAME"])
        settings_dict = {
            **settings_dict,
            "HOST": params["host"],
            "PORT": params["port"],
            "USER": params["user"],
        }
        args, env = super().settings_to_cmd_args_env(settings_dict, parameters)
        args[0] = str(embedded_db.bin_path("psql"))
        return args, env


class DatabaseWrapper(base.DatabaseWrapper):
    client_class = DatabaseClient

    def get_connection_params(self) -> dict[str, Any]:
        params = super().get_connection_params()
        params.update(embedded_db.connection_params(params.get("dbname") or "postgres"))
        return params
