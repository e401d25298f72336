"""Routing reporting reads to a streaming read replica (``REPORTING_DATABASE_URL``).

With the setting, the ``reporting`` database alias points at a hot standby of
the primary. Every reporting read (selectors, and so the API, the CSV export
and the dashboard; the admin's views of the reporting models) goes there;
writes, migrations, view syncs and refreshes always go to the primary, and
reach the standby through PostgreSQL's own WAL replication, together with the
refresh log and the change log that freshness and real-time reads need.
"""

from __future__ import annotations

__all__ = ["READ_MODELS", "ReportingRouter", "read_database"]

from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS

# Models read for reports, by their label: the read-only views and the refresh log.
READ_MODELS = {"reporting.orderlateststatus", "reporting.orderlateststatuslive", "reporting.refreshrun"}
REPLICA_ALIAS = "reporting"


def read_database() -> str:
    """The alias reporting reads use: the replica when configured, else the primary.

    ``REPORTING_READ_DATABASE`` names another alias explicitly (tests use it).
    """
    alias = getattr(settings, "REPORTING_READ_DATABASE", None)
    if alias:
        return str(alias)
    return REPLICA_ALIAS if REPLICA_ALIAS in settings.DATABASES else DEFAULT_DB_ALIAS


class ReportingRouter:
    def db_for_read(self, model: Any, **hints: Any) -> str | None:
        if model._meta.label_lower in READ_MODELS:
            return read_database()
        return None

    def db_for_write(self, model: Any, **hints: Any) -> str | None:
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool | None:
        return True  # the replica is a copy of the primary

    def allow_migrate(
        self, db: str, app_label: str, model_name: str | None = None, **hints: Any
    ) -> bool | None:
        # Migrations and view syncs only on the primary; a standby replays them.
        return db == DEFAULT_DB_ALIAS
