"""Health: /healthz, and /readyz with its checks, when the database is there, stale, unreachable
or stopped."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
from django.db.models import F

from examples.shop import services as shop_services
from reporting import services
from reporting.models import RefreshRun
from tests.factories import EPOCH
from tests.helpers import extra_connection


@pytest.mark.django_db(transaction=True)
def test_healthz_and_readyz_answer_without_login_and_without_data(client, settings):
    assert client.get("/healthz").json() == {"status": "ok"}
    shop_services.orders_seed(orders=30, seed=1, until=EPOCH)
    never = client.get("/readyz")
    assert never.status_code == 503
    assert never.json()["problems"] == ["freshness: never refreshed"]
    services.views_refresh()
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.json()
    assert ready.json()["checks"] == {
        "database": True,
        "views_populated": True,
        "fresh": True,
        "change_log": True,
        "audit": True,
    }
    assert "orders" not in ready.content.decode() and "cancelled" not in ready.content.decode()
    # Past the bound: as if the last refresh (or check) had been an hour ago.
    RefreshRun.objects.update(snapshot_at=F("snapshot_at") - dt.timedelta(hours=1))
    settings.REPORTING_READY_MAX_AGE = "600"
    stale = client.get("/readyz")
    assert stale.status_code == 503
    assert stale.json()["checks"]["fresh"] is False
    assert stale.json()["problems"][0].startswith("freshness: as of 3")


@pytest.mark.django_db(transaction=True)
def test_readyz_is_503_when_the_database_does_not_answer(client, settings):
    services.views_refresh()
    assert client.get("/readyz").status_code == 200
    # Reads go to an alias whose server refuses connections: a real failed connect.
    with extra_connection("nowhere", HOST="127.0.0.1", PORT="1"):
        settings.REPORTING_READ_DATABASE = "nowhere"
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"] == {
        "database": False,
        "views_populated": False,
        "fresh": False,
        "change_log": False,
        "audit": False,
    }
    assert response.json()["problems"] == ["database: did not answer"]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_readyz_is_503_while_the_embedded_server_is_stopped(client):
    from reporting import embedded_db

    if not embedded_db.server_in_use():
        pytest.skip("DATABASE_URL: that server is not ours to stop (the unreachable-server test stands in)")
    services.views_refresh()
    assert client.get("/readyz").status_code == 200
    stopped = threading.Thread(target=embedded_db.restart, kwargs={"downtime": 3})
    stopped.start()
    seen = set()
    deadline = time.monotonic() + 30
    while stopped.is_alive() and time.monotonic() < deadline:
        response = client.get("/readyz")
        seen.add(response.status_code)
        if response.status_code == 503:
            assert response.json()["problems"] == ["database: did not answer"]
        time.sleep(0.2)
    stopped.join(60)
    assert 503 in seen, seen
    deadline = time.monotonic() + 30
    while client.get("/readyz").status_code != 200:
        assert time.monotonic() < deadline, "not ready again after the restart"
        time.sleep(0.2)
