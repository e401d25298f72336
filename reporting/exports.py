"""Streaming CSV export of the orders in a status: constant memory, any row count.

The rows come from :func:`reporting.selectors.order_iter_by_status`, a
server-side cursor read a chunk at a time; each chunk is rendered to CSV and
handed on, so neither the rows nor the file are ever held whole.
"""

from __future__ import annotations

__all__ = ["CSV_HEADER", "orders_csv_chunks", "plain_value"]

import csv
import decimal
import io
import json
import re
import uuid
from collections.abc import Iterator
from typing import Any

from reporting import selectors
from reporting.declaration import source

#: The columns of every file; the columns ``REPORTING_SOURCE`` declares to show follow.
#: ``status_created`` is the latest row's time, ``status_since`` when the order entered the status.
CSV_HEADER = ("order_id", "status_id", "status", "status_created", "status_since")


def orders_csv_chunks(*, status: str, strategy: str | None = None, chunk_rows: int = 5000) -> Iterator[bytes]:
    """Yield the CSV file of the orders in ``status`` as UTF-8 chunks of ``chunk_rows`` rows.

    Args:
        status: ``pending``, ``complete`` or ``cancelled``; validated before the first chunk.
        strategy: ``live``, ``snapshot`` or ``realtime``; ``None`` for the default.
        chunk_rows: rows per chunk, and per round trip to the database.

    Raises:
        InvalidStatusError, InvalidParameterError: at once, before any row is read.
    """
    rows = selectors.order_iter_by_status(status=status, strategy=strategy, chunk_size=chunk_rows)
    return _render(rows, chunk_rows)


# A spreadsheet runs a cell that starts with one of these as a formula
# (=HYPERLINK(...)): text that does is written after a quote, as OWASP advises.
# A plain number (a float or a numeric read as text, "-1.5") is no formula.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
PLAIN_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?")
# Values JSON writes as they are (Django's encoder writes a Decimal and a UUID as strings).
_PLAIN_TYPES = (str, int, decimal.Decimal, uuid.UUID)


def plain_value(value: Any) -> Any:
    """A declared column's value as the API, the CSV and the order page show it.

    The selectors read times, intervals, floats and JSON as PostgreSQL's text;
    bytes become hex, arrays lists of such values, and any other type (a range,
    a project's type) its text.
    """
    if value is None or isinstance(value, _PLAIN_TYPES):
        return value
    if isinstance(value, bytes | memoryview):
        return bytes(value).hex()
    if isinstance(value, list):
        return [plain_value(item) for item in value]
    return str(value)


def _cell(value: Any) -> Any:
    """A declared column's value in a CSV cell: empty for NULL, an array as JSON, the rest as text.

    The columns hold the shop's data (a customer's note, say), so text that a
    spreadsheet would run as a formula is quoted.
    """
    value = plain_value(value)
    if isinstance(value, list):
        return json.dumps(value, default=str)
    if isinstance(value, str) and value.startswith(FORMULA_START) and not PLAIN_NUMBER.fullmatch(value):
        return f"'{value}"
    return value


def _render(rows: Iterator[selectors.OrderRow], chunk_rows: int) -> Iterator[bytes]:
    buffer = io.StringIO()
    # Records end in CRLF (RFC 4180), and the csv module quotes a field that holds a
    # character of the line terminator: with "\n" alone, a value holding a carriage
    # return went out unquoted, and a reader started a new record after it (where
    # "=..." would then start a cell unguarded).
    writer = csv.writer(buffer, lineterminator="\r\n")
    names = source().columns
    writer.writerow((*CSV_HEADER, *names))
    pending = 0
    for row in rows:
        writer.writerow(
            (
                row.order_id,
                row.status_id,
                # A value nobody declared is any text the history holds: guarded as any cell.
                _cell(row.status),
                row.status_created.isoformat(),
                row.status_since.isoformat(),
                *(_cell(row.columns.get(name)) for name in names),
            )
        )
        pending += 1
        if pending == chunk_rows:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
            pending = 0
    yield buffer.getvalue().encode()
