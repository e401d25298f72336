"""Running a selector's SQL on Django's connection, through psycopg's own cursors.

Django's cursors bind parameters on the client and read results as text. The
selectors' large lists and hot reads want more: binary results (psycopg's C
loaders read timestamps; Django's text loader for timestamptz is Python code,
about 8x slower on large lists), server-side cursors for streams, and prepared
statements for the reads that a dashboard repeats (planned once per connection:
the real-time page and counts take longer to plan than to run).

Everything runs on the connection and in the transaction of Django's read
database, so it mixes with ORM reads, and errors come out as Django's.
"""

from __future__ import annotations

__all__ = ["rows", "stream"]

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
from django.db import connections
from psycopg.types.string import TextLoader

from reporting import conf
from reporting.routers import read_database

# psycopg's default: with it set, a statement run with prepare=True is prepared at
# once. Django leaves it unset (None, never prepare); its own cursors bind on the
# client and never prepare whatever it says, so setting it changes only ours.
PREPARE_THRESHOLD = 5


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
    connection.ensure_connection()
    pg = connection.connection
    prepared = prepare and conf.prepared_reads()
    if prepared and pg.prepare_threshold is None:
        pg.prepare_threshold = PREPARE_THRESHOLD
    with connection.wrap_database_errors, psycopg.Cursor(pg) as cursor:
        for name in as_text:
            cursor.adapters.register_loader(name, TextLoader)
        cursor.execute(sql, params or {}, binary=binary, prepare=prepared)
        return cursor.fetchall()


def stream(sql: str, params: dict[str, Any], chunk_size: int) -> Iterator[tuple[Any, ...]]:
    """Stream a query from a server-side cursor, ``chunk_size`` rows per round trip, in binary."""
    connection = connections[read_database()]
    connection.ensure_connection()
    pg = connection.connection
    name = f"reporting_stream_{uuid.uuid4().hex}"
    # Outside a transaction the cursor must survive the implicit commit (WITH HOLD).
    with connection.wrap_database_errors, psycopg.ServerCursor(pg, name, withhold=pg.autocommit) as cursor:
        cursor.execute(sql, params, binary=True)
        while chunk := cursor.fetchmany(chunk_size):
            yield from chunk
