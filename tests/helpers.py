"""What several test modules share: connections of their own, subprocess settings, waits, declarations."""

from __future__ import annotations

import contextlib
import os

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


def wait_for_sql(sql: str, params=None, *, what: str, timeout: float = 20, interval: float = 0.03) -> None:
    """Poll ``sql`` on a connection of its own until its first column is true, or fail naming ``what``.

    For a test that waits on another session's state (``pg_stat_activity``, ``pg_locks``).
    """
    import time

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
    from reporting import source_sql

    example = settings.REPORTING_SOURCE
    settings.REPORTING_SOURCE = declaration
    try:
        assert source_sql.source_install()
        sync_views()
        yield
    finally:
        settings.REPORTING_SOURCE = example
        source_sql.source_install()
        sync_views()
