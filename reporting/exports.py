"""Streaming CSV export of the orders in a status: constant memory, any row count.

The rows come from :func:`reporting.selectors.order_iter_by_status`, a
server-side cursor read a chunk at a time; each chunk is rendered to CSV and
handed on, so neither the rows nor the file are ever held whole.
"""

from __future__ import annotations

__all__ = ["CSV_HEADER", "orders_csv_chunks"]

import csv
import io
from collections.abc import Iterator

from reporting import selectors

CSV_HEADER = ("order_id", "status_id", "status", "status_created")


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


def _render(rows: Iterator[selectors.OrderRow], chunk_rows: int) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    pending = 0
    for row in rows:
        writer.writerow((row.order_id, row.status_id, row.status, row.status_created.isoformat()))
        pending += 1
        if pending == chunk_rows:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
            pending = 0
    yield buffer.getvalue().encode()
