"""Limits on reads made for the web: a statement timeout on the reporting connection."""

from __future__ import annotations

__all__ = ["read_statement_timeout"]

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connections

from reporting import conf
from reporting.routers import read_database
from reporting.selectors import sql as raw


@contextmanager
def read_statement_timeout(seconds: float) -> Iterator[None]:
    """Limit every statement of the reporting reads inside the block to ``seconds`` (0: no limit).

    The setting is the session's, and is put back when the block ends, also on an
    error: the connection is reused by the next request. Behind a transaction
    pooler (``DISABLE_SERVER_SIDE_CURSORS``) a session setting would stay with a
    server session that other clients get next, so there each read transaction
    of the selectors sets it for itself (``SET LOCAL``) instead.
    """
    if seconds <= 0:
        yield
        return
    timeout = f"{max(1, round(seconds * 1000))}ms"
    if conf.pooled(read_database()):
        token = raw.statement_timeout.set(timeout)
        try:
            yield
        finally:
            raw.statement_timeout.reset(token)
        return
    connection = connections[read_database()]
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('statement_timeout', %s, false)", [timeout])
    try:
        yield
    finally:
        if connection.connection is not None and not connection.connection.closed:
            try:
                with connection.cursor() as cursor:
                    cursor.execute("RESET statement_timeout")
            except Exception:  # a broken connection: Django drops it before its next use
                connection.close_if_unusable_or_obsolete()
