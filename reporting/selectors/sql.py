"""Running a selector's SQL on Django's connection, through psycopg's own cursors.

Django's cursors bind parameters on the client and read results as text. The
selectors' large lists and hot reads want more: binary results (psycopg's C
loaders read timestamps; Django's text loader for timestamptz is Python code,
about 8x slower on large lists), server-side cursors for streams, and prepared
statements for the reads that a dashboard repeats (planned once per connection:
the real-time page and counts take longer to plan than to run).

Everything runs on the connection and in the transaction of Django's read
database, so it mixes with ORM reads, and errors come out as Django's.

Every read here runs in a transaction with ``SET LOCAL jit = off`` (the caller's,
or one of its own). The real-time views' plans include the branch that recomputes
every key (taken only when the change log cannot be trusted), so the planner's
cost estimate crosses ``jit_above_cost`` on any sizeable table: on a server with
JIT (most distribution packages) each read then spends hundreds of milliseconds
compiling code for a branch it does not run. A transaction-local setting reaches
the server whatever the connection goes through (a transaction pooler, a
replica) and leaves the session as it was. See "JIT" in docs/deployment.md.
"""

from __future__ import annotations

__all__ = ["cursor", "read_transaction", "rows", "stream"]

import contextvars
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.utils import CursorWrapper
from psycopg.pq import TransactionStatus
from psycopg.types.string import TextLoader

from reporting import conf
from reporting.routers import read_database

# psycopg's default: with it set, a statement run with prepare=True is prepared at
# once. Django leaves it unset (None, never prepare); its own cursors bind on the
# client and never prepare whatever it says, so setting it changes only ours.
PREPARE_THRESHOLD = 5

# What every read transaction starts with; constants, so one round trip of the
# simple query protocol carries them all.
BEGIN_READ = "BEGIN; SET LOCAL jit = off"
JIT_OFF = "SET LOCAL jit = off"
SET_TIMEOUT = "SELECT set_config('statement_timeout', %s, true)"

# The statement timeout of the reads in progress behind a transaction pooler, where a
# session setting would reach another client's session (selectors.read_statement_timeout).
statement_timeout: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "reporting_read_statement_timeout", default=None
)


@contextmanager
def read_transaction(connection: BaseDatabaseWrapper | None = None) -> Iterator[psycopg.Connection[Any]]:
    """Run the block in a transaction with JIT off, on the read database's connection.

    Inside a transaction already (``transaction.atomic``), it only turns JIT off for
    the rest of it. Otherwise it begins one, commits it when the block ends and
    rolls it back on an error (a read writes nothing, so either keeps nothing).

    Args:
        connection: the Django connection; the read database's by default.

    Yields:
        psycopg's connection, for psycopg's own cursors.
    """
    connection = connection or connections[read_database()]
    connection.ensure_connection()
    pg = connection.connection
    timeout = statement_timeout.get()
    with connection.wrap_database_errors:
        if pg.info.transaction_status != TransactionStatus.IDLE or not pg.autocommit:
            with psycopg.Cursor(pg) as cur:
                cur.execute(JIT_OFF)
                if timeout is not None:
                    cur.execute(SET_TIMEOUT, [timeout])
            yield pg
            return
        with psycopg.Cursor(pg) as cur:
            cur.execute(BEGIN_READ)
            if timeout is not None:
                cur.execute(SET_TIMEOUT, [timeout])
    try:
        yield pg
    except BaseException:
        if not pg.closed and pg.info.transaction_status != TransactionStatus.IDLE:
            with connection.wrap_database_errors:
                pg.execute("ROLLBACK")
        raise
    with connection.wrap_database_errors:
        pg.execute("COMMIT")


@contextmanager
def cursor() -> Iterator[CursorWrapper]:
    """A Django cursor on the read database, in a read transaction (:func:`read_transaction`)."""
    connection = connections[read_database()]
    with read_transaction(connection), connection.cursor() as django_cursor:
        yield django_cursor


def rows(
    sql: str,
    params: dict[str, Any] | None = None,
    *,
    prepare: bool = False,
    binary: bool = True,
    as_text: tuple[str, ...] = (),
) -> list[tuple[Any, ...]]:
    """Run a query and return its rows, read in binary unless told otherwise.

    Args:
        sql: the statement, with ``%(name)s`` placeholders.
        params: their values.
        prepare: run it as a prepared statement (if ``REPORTING_PREPARED_READS``
            allows): for statements of a fixed text run again and again, whose
            one plan serves every value of their parameters.
        binary: read the results in binary. Columns of types psycopg has no binary
            loader for (a project's enums, say) would come back as bytes; in text
            they come back as strings.
        as_text: types (such as ``"timestamptz"``) whose values, in arrays too, come
            back as PostgreSQL's text rather than Python objects (text reads only).
    """
    connection = connections[read_database()]
    prepared = prepare and conf.prepared_reads()
    with read_transaction(connection) as pg:
        if prepared and pg.prepare_threshold is None:
            pg.prepare_threshold = PREPARE_THRESHOLD
        with connection.wrap_database_errors, psycopg.Cursor(pg) as cur:
            for name in as_text:
                cur.adapters.register_loader(name, TextLoader)
            cur.execute(sql, params or {}, binary=binary, prepare=prepared)
            return cur.fetchall()


def stream(sql: str, params: dict[str, Any], chunk_size: int) -> Iterator[tuple[Any, ...]]:
    """Stream a query from a server-side cursor, ``chunk_size`` rows per round trip, in binary.

    The cursor lives in a read transaction that lasts until the last row is read
    (or the stream is closed): one snapshot, one server session, constant memory.
    It never needs WITH HOLD, which a transaction pooler could not honour.
    """
    connection = connections[read_database()]
    name = f"reporting_stream_{uuid.uuid4().hex}"
    with read_transaction(connection) as pg, psycopg.ServerCursor(pg, name) as cur:
        with connection.wrap_database_errors:
            cur.execute(sql, params, binary=True)
        while True:
            with connection.wrap_database_errors:
                chunk = cur.fetchmany(chunk_size)
            if not chunk:
                break
            yield from chunk
