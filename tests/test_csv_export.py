"""The CSV export of a status's orders: streamed in bounded memory, read back as written, and
limited per token."""

from __future__ import annotations

import csv
import datetime as dt
import io
import tracemalloc

import psycopg
import pytest
from django.db import connection
from django.urls import reverse

from reporting import selectors, services
from reporting.models import CsvExport
from tests.factories import EPOCH
from tests.helpers import api_get


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_csv_export_of_200k_rows_streams_in_bounded_memory(client, reader, monkeypatch):
    client.force_login(reader)
    rows = 200_000
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO reporting_example_order (id, created) SELECT g, %s FROM generate_series(1, %s) g",
            [EPOCH, rows],
        )
        cursor.execute(
            "INSERT INTO reporting_example_orderstatus (order_id, created, status) "
            "SELECT g, %s::timestamptz + g * interval '1 second', 'cancelled' FROM generate_series(1, %s) g",
            [EPOCH, rows],
        )
    services.views_refresh()
    fetched = {"rows": 0}
    fetchmany = psycopg.ServerCursor.fetchmany

    def counting_fetchmany(self, size=0):
        batch = fetchmany(self, size)
        fetched["rows"] += len(batch)
        return batch

    monkeypatch.setattr(psycopg.ServerCursor, "fetchmany", counting_fetchmany)
    # Memory from before the request: a view that built the whole file (or the
    # whole row list) before answering would show here.
    tracemalloc.start()
    response = client.get(reverse("api-orders-csv"), {"status": "cancelled", "strategy": "snapshot"})
    assert response.status_code == 200
    assert response.streaming, "the export must be a streaming response"
    assert response["Content-Disposition"].startswith('attachment; filename="orders-cancelled-')
    assert fetched["rows"] == 0, "no row is read before the body is"
    ids: list[int] = []
    header = None
    tail = b""
    chunks = 0
    for chunk in response.streaming_content:
        chunks += 1
        if chunks == 1:
            assert fetched["rows"] <= 2 * 5000, f"{fetched['rows']} rows read for the first chunk"
        lines = (tail + chunk).split(b"\r\n")
        tail = lines.pop()
        for line in lines:
            if header is None:
                header = line
            else:
                ids.append(int(line.split(b",", 1)[0]))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert header == b"order_id,status_id,status,status_created,status_since"
    assert tail == b""
    assert chunks > 10, "sent in many chunks, not built whole"
    assert ids == list(range(rows, 0, -1)), "every order once, most recent first"
    # The ids list itself takes ~9 MiB; rows held whole as Python objects would take far more.
    assert peak < 40 * 2**20, f"peak Python memory {peak / 2**20:.1f} MiB"


def test_csv_rows_parse_back(api, seeded):
    response = api_get(api, "api-orders-csv", status="pending", strategy="live")
    text = b"".join(response.streaming_content).decode()
    parsed = list(csv.DictReader(io.StringIO(text)))
    expected = list(selectors.order_iter_by_status(status="pending", strategy="live"))
    assert [int(r["order_id"]) for r in parsed] == [r.order_id for r in expected]
    assert parsed[0]["status"] == "pending"
    assert dt.datetime.fromisoformat(parsed[0]["status_created"]) == expected[0].status_created
    since = [dt.datetime.fromisoformat(r["status_since"]) for r in parsed]
    assert since == [r.status_since for r in expected]


def test_csv_exports_are_rate_limited_per_token(client, reader, seeded, settings):
    settings.REPORTING_CSV_EXPORTS_PER_HOUR = "2"
    first = services.api_token_create(username="reader", name="first")
    second = services.api_token_create(username="reader", name="second")

    def export(token: str):
        return client.get(
            reverse("api-orders-csv"), {"status": "pending"}, HTTP_AUTHORIZATION=f"Bearer {token}"
        )

    assert [export(first).status_code for _ in range(2)] == [200, 200]
    limited = export(first)
    assert limited.status_code == 429
    assert limited["Content-Type"] == "application/json"
    assert 3000 <= int(limited["Retry-After"]) <= 3600
    assert "at most 2 CSV exports an hour (REPORTING_CSV_EXPORTS_PER_HOUR)" in limited.json()["error"]
    assert limited.json()["setting"] == "REPORTING_CSV_EXPORTS_PER_HOUR", "names what to raise"
    assert export(second).status_code == 200, "each token has its own budget"
    assert CsvExport.objects.count() == 3
