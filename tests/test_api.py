from __future__ import annotations

import csv
import datetime as dt
import io
import re
import threading
import time
import tracemalloc
from io import StringIO

import psycopg
import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.management import CommandError, call_command
from django.db import OperationalError, connection
from django.db.models import F
from django.urls import reverse
from django.utils import timezone

from examples.shop import services as shop_services
from examples.shop.models import Order, OrderStatus
from reporting import selectors, services
from reporting.exceptions import ReportingError
from reporting.models import ApiToken, CsvExport, RefreshRun
from tests.brute_force import brute_force_transition_times, brute_force_transitions
from tests.factories import (
    EPOCH,
    all_status_rows,
    orders_create,
    statuses_create,
)
from tests.helpers import extra_connection, raw_connect

ENDPOINTS = ["api-status-counts", "api-orders", "api-orders-csv", "api-freshness"]


@pytest.fixture
def reader(db):
    services.reports_user_ensure(username="reader", password="reader-password-1")
    user = get_user_model().objects.get(username="reader")
    user.user_permissions.add(Permission.objects.get(codename="read_live"))
    return get_user_model().objects.get(username="reader")  # fresh: permissions are cached


@pytest.fixture
def plain_reader(db):
    """A reports user without the permission for live reads."""
    services.reports_user_ensure(username="plain", password="plain-password-1")
    return get_user_model().objects.get(username="plain")


@pytest.fixture
def api(client, reader):
    client.force_login(reader)
    return client


@pytest.fixture
def seeded(db, refreshed):
    shop_services.orders_seed(orders=400, seed=9, until=EPOCH)
    refreshed()


def get(client, name, **params):
    return client.get(reverse(name), params)


def test_status_counts(api, seeded):
    for strategy in ("live", "snapshot", "realtime"):
        response = get(api, "api-status-counts", strategy=strategy)
        assert response.status_code == 200
        body = response.json()
        assert body["counts"] == selectors.order_status_counts(strategy="live").as_dict()
        assert body["total"] == 400
        assert body["freshness"]["strategy"] == strategy
    assert get(api, "api-status-counts").json()["freshness"]["strategy"] == "realtime", "the default"


def test_orders_page_and_cursor(api, seeded):
    expected = [r.order_id for r in selectors.order_iter_by_status(status="cancelled", strategy="live")]
    first = get(api, "api-orders", status="cancelled", limit=10).json()
    assert [o["order_id"] for o in first["orders"]] == expected[:10]
    assert set(first["orders"][0]) == {"order_id", "status_id", "status", "status_created", "status_since"}
    assert first["freshness"]["strategy"] == "realtime"
    second = get(api, "api-orders", status="cancelled", limit=10, after=first["next_after"]).json()
    assert [o["order_id"] for o in second["orders"]] == expected[10:20]


def test_freshness(api, seeded):
    body = get(api, "api-freshness").json()
    assert set(body) == {
        "as_of",
        "checked_at",
        "age_seconds",
        "changes_since",
        "folded_at",
        "overlay_orders",
        "on_replica",
        "replay_lag_seconds",
        "runs",
    }
    assert (body["on_replica"], body["replay_lag_seconds"]) == (False, None)
    assert body["overlay_orders"] == 0


@pytest.mark.django_db(transaction=True)
def test_freshness_lists_refresh_runs(client, reader):
    client.force_login(reader)
    shop_services.orders_seed(orders=20, seed=1, until=EPOCH)
    result = services.views_refresh()
    body = get(client, "api-freshness", runs=3).json()
    assert result.snapshot_at is not None
    assert body["as_of"] == result.snapshot_at.isoformat()
    assert body["changes_since"] == 0
    assert body["runs"][0]["outcome"] == "ok"
    assert body["runs"][0]["rows"] == 20
    assert body["folded_at"] == body["as_of"], "before any fold, the overlay is as of the refresh"
    shop_services.order_create()
    assert services.overlay_fold().outcome == "ok"
    body = get(client, "api-freshness").json()
    assert (body["overlay_orders"], body["changes_since"]) == (1, 2)
    assert body["folded_at"] > body["as_of"]


@pytest.mark.parametrize(
    ("name", "params", "parameter"),
    [
        ("api-orders", {"status": "failed"}, "status"),
        ("api-orders", {}, "status"),
        ("api-orders", {"status": "cancelled", "after": "abc"}, "after"),
        ("api-orders", {"status": "cancelled", "after": "-1"}, "after"),
        ("api-orders", {"status": "cancelled", "after": "1.5"}, "after"),
        ("api-orders", {"status": "cancelled", "after": "999999999"}, "after"),
        ("api-orders", {"status": "cancelled", "limit": "0"}, "limit"),
        ("api-orders", {"status": "cancelled", "limit": "1001"}, "limit"),
        ("api-orders", {"status": "cancelled", "limit": "ten"}, "limit"),
        ("api-orders", {"status": "cancelled", "strategy": "fastest"}, "strategy"),
        ("api-status-counts", {"strategy": "cached"}, "strategy"),
        ("api-orders-csv", {"status": "failed"}, "status"),
        ("api-orders-csv", {"status": "cancelled", "strategy": "x"}, "strategy"),
        ("api-freshness", {"runs": "0"}, "runs"),
        ("api-freshness", {"runs": "101"}, "runs"),
        ("api-orders-stuck", {"hours": str(24 * 366 + 1)}, "hours"),
        ("api-orders-stuck", {"limit": "1001"}, "limit"),
    ],
)
def test_bad_parameters_get_400_naming_the_parameter_and_valid_values(api, name, params, parameter):
    response = get(api, name, **params)
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["parameter"] == parameter
    assert body["valid"], "the valid values are named"
    if parameter == "status":
        assert body["valid"] == "pending, complete, cancelled"


@pytest.mark.parametrize("name", ENDPOINTS)
def test_anonymous_calls_get_401_json_not_a_redirect(client, db, name):
    response = get(client, name, status="cancelled")
    assert response.status_code == 401
    assert response.json()["error"].startswith("authentication required")
    assert "Location" not in response


@pytest.mark.parametrize("name", ENDPOINTS)
def test_users_without_the_permission_get_403(client, db, name):
    user = get_user_model().objects.create_user("nobody", password="nobody-password")
    client.force_login(user)
    response = get(client, name, status="cancelled")
    assert response.status_code == 403
    assert "reporting.view_reports" in response.json()["error"]


def test_api_tokens(client, reader, seeded):
    token = services.api_token_create(username="reader", name="script")
    response = client.get(reverse("api-status-counts"), HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200
    assert response.json()["total"] == 400
    bad = client.get(reverse("api-status-counts"), HTTP_AUTHORIZATION="Bearer rpt_not-a-token")
    assert bad.status_code == 401
    reader.is_active = False
    reader.save()
    assert client.get(reverse("api-status-counts"), HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 401


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete", "options", "trace"])
@pytest.mark.parametrize("name", ENDPOINTS)
def test_every_other_method_gets_a_json_405_naming_the_allowed_ones(api, seeded, method, name):
    response = getattr(api, method)(reverse(name))
    assert response.status_code == 405, "not a CSRF 403, not an empty 405"
    assert response["Content-Type"] == "application/json"
    assert response["Allow"] == "GET, HEAD"
    assert method.upper() in response.json()["error"]


def test_head_answers_like_get_without_a_body(api, seeded):
    response = api.head(reverse("api-status-counts"))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"


@pytest.mark.parametrize(
    ("name", "params", "parameter"),
    [
        # str.isdigit() takes these; int() refuses the first two and reads the others.
        ("api-orders", "status=cancelled&limit=%C2%B2", "limit"),  # superscript two
        ("api-orders", "status=cancelled&after=%E2%81%B5", "after"),  # superscript five
        ("api-orders", "status=cancelled&limit=%D9%A3", "limit"),  # Arabic-Indic three
        ("api-orders", "status=cancelled&limit=%EF%BC%95", "limit"),  # full-width five
        ("api-freshness", "runs=%C2%B2", "runs"),
        ("api-orders", "status=cancelled&limit=" + "9" * 5000, "limit"),
        ("api-orders", "status=cancelled&after=" + "1" * 20, "after"),
        ("api-orders", "status=failed&status=cancelled", "status"),  # repeated
        ("api-orders", "status=cancelled&limit=5&limit=6", "limit"),
        ("api-orders", "status=cancelled&stauts=pending", "parameter"),  # unknown
        ("api-status-counts", "strategy=live&strategy=snapshot", "strategy"),
    ],
)
def test_odd_numbers_and_parameters_get_a_json_400(api, seeded, name, params, parameter):
    response = api.get(f"{reverse(name)}?{params}")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["parameter"] == parameter
    assert len(body["error"]) < 300, "a long value is not echoed whole"


def test_too_many_parameters_get_a_json_400(api, seeded):
    query = "&".join(f"x{i}=1" for i in range(1100))
    response = api.get(f"{reverse('api-status-counts')}?{query}")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert "DATA_UPLOAD_MAX_NUMBER_FIELDS" in response.json()["error"]


@pytest.mark.parametrize("path", ["/api/nothing-here", "/api", "/api/"])
def test_an_unknown_api_path_gets_a_json_404(api, seeded, path):
    response = api.get(path)
    assert response.status_code == 404
    assert response.json()["error"] == f"no API endpoint at {path!r}"


@pytest.mark.parametrize(
    ("error", "status"),
    [(OperationalError("the server closed the connection"), 503), (RuntimeError("a bug"), 500)],
)
def test_a_failure_behind_an_endpoint_is_still_a_json_answer(api, seeded, monkeypatch, error, status):
    def fail(**kwargs):
        raise error

    monkeypatch.setattr(selectors, "order_status_counts", fail)
    response = api.get(reverse("api-status-counts"))
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    assert "a bug" not in response.json()["error"], "internals are logged, not shown"


def test_the_dashboard_refuses_odd_numbers_with_a_400_page(api, seeded):
    for after in ("%C2%B2", "%D9%A3", "9" * 5000):
        assert api.get(f"{reverse('dashboard')}?after={after}").status_code == 400


def test_tokens_expire_have_names_and_are_revoked_one_by_one(client, reader, seeded):
    long_lived = services.api_token_create(username="reader", name="nightly export")
    short = services.api_token_create(username="reader", name="one day", expires_in=dt.timedelta(days=1))
    assert client.get(reverse("api-status-counts"), HTTP_AUTHORIZATION=f"Bearer {short}").status_code == 200
    with pytest.raises(ReportingError, match="has a token named 'nightly export' already"):
        services.api_token_create(username="reader", name="nightly export")
    listed = {t.name: t for t in selectors.api_token_list(username="reader")}
    assert set(listed) == {"nightly export", "one day"}
    assert listed["one day"].last_used is not None and listed["nightly export"].last_used is None
    assert listed["one day"].expires is not None and listed["nightly export"].expires is None

    ApiToken.objects.filter(name="one day").update(expires=timezone.now() - dt.timedelta(seconds=1))
    expired = client.get(reverse("api-status-counts"), HTTP_AUTHORIZATION=f"Bearer {short}")
    assert expired.status_code == 401
    assert expired.json()["error"].startswith("API token expired at")
    out = StringIO()
    call_command("api_token", "list", "reader", stdout=out)
    assert "'one day'" in out.getvalue() and "(expired)" in out.getvalue()
    assert long_lived not in out.getvalue()

    call_command("api_token", "revoke", "reader", "--name", "one day", stdout=StringIO())
    assert [t.name for t in selectors.api_token_list(username="reader")] == ["nightly export"]
    ok = client.get(reverse("api-status-counts"), HTTP_AUTHORIZATION=f"Bearer {long_lived}")
    assert ok.status_code == 200, "revoking one token leaves the others"
    with pytest.raises(CommandError, match="no such token"):
        call_command("api_token", "revoke", "reader", "--name", "one day", stdout=StringIO())
    with pytest.raises(CommandError, match="--id"):
        call_command("api_token", "revoke", "reader", stdout=StringIO())
    call_command("api_token", "revoke", "--id", str(listed["nightly export"].id), stdout=StringIO())
    assert selectors.api_token_list() == []
    gone = client.get(reverse("api-status-counts"), HTTP_AUTHORIZATION=f"Bearer {long_lived}")
    assert gone.status_code == 401


@pytest.mark.parametrize("header", ["Bearer rpt_" + "x" * 5000, "Bearer not-ours", "Bearer "])
def test_a_bad_bearer_token_is_a_401_even_with_a_session(api, seeded, header):
    response = api.get(reverse("api-status-counts"), HTTP_AUTHORIZATION=header)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid API token"


@pytest.mark.django_db(transaction=True)
def test_walking_every_page_while_writes_happen_gives_the_full_list_once(client, reader):
    client.force_login(reader)
    shop_services.orders_seed(orders=600, seed=4, until=EPOCH)
    services.views_refresh()
    expected = [r.order_id for r in selectors.order_iter_by_status(status="cancelled", strategy="live")]
    pending = [r.order_id for r in selectors.order_iter_by_status(status="pending", strategy="live")]
    seen: list[int] = []
    after = None
    page = 0
    while True:
        params = {"status": "cancelled", "limit": 13, **({"after": after} if after else {})}
        body = get(client, "api-orders", **params).json()
        seen += [o["order_id"] for o in body["orders"]]
        # Between pages: new cancellations (newer than every listed row, so they belong
        # before the cursor), completions of pending orders, and a refresh now and then.
        if len(pending) >= 2:
            shop_services.order_status_record(order_id=pending.pop(), status="cancelled")
            shop_services.order_status_record(order_id=pending.pop(), status="complete")
        if page % 5 == 4:
            services.views_refresh()
        page += 1
        after = body["next_after"]
        if after is None:
            break
    assert len(seen) == len(set(seen)), "no duplicates"
    assert seen == expected, "no gaps: every order cancelled at the start, once, in order"


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
    response = get(api, "api-orders-csv", status="pending", strategy="live")
    text = b"".join(response.streaming_content).decode()
    parsed = list(csv.DictReader(io.StringIO(text)))
    expected = list(selectors.order_iter_by_status(status="pending", strategy="live"))
    assert [int(r["order_id"]) for r in parsed] == [r.order_id for r in expected]
    assert parsed[0]["status"] == "pending"
    assert dt.datetime.fromisoformat(parsed[0]["status_created"]) == expected[0].status_created
    since = [dt.datetime.fromisoformat(r["status_since"]) for r in parsed]
    assert since == [r.status_since for r in expected]


def test_the_dashboard_needs_a_login_and_the_permission(client, db):
    response = client.get(reverse("dashboard"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
    user = get_user_model().objects.create_user("nobody", password="nobody-password")
    client.force_login(user)
    assert client.get(reverse("dashboard")).status_code == 403


def test_the_dashboard_shows_counts_chart_and_cancelled_orders(api, seeded):
    response = api.get(reverse("dashboard"))
    assert response.status_code == 200
    html = response.content.decode()
    counts = selectors.order_status_counts(strategy="live").as_dict()
    assert f'data-status="cancelled" data-count="{counts["cancelled"]}"' in html
    first = next(iter(selectors.order_iter_by_status(status="cancelled", strategy="live")))
    assert f'data-order="{first.order_id}"' in html
    assert 'id="freshness"' in html
    # The pager's link leads to the rows that follow the table's last one, and back.
    expected = [r.order_id for r in selectors.order_iter_by_status(status="cancelled", strategy="live")]
    assert f"1\u201325 of {counts['cancelled']}" in html
    link = re.search(r'href="\?after=(\d+)&amp;trail=0&amp;page=2" rel="next"', html)
    assert link is not None, "no next-page link"
    second = api.get(
        reverse("dashboard"), {"after": link.group(1), "trail": "0", "page": "2"}
    ).content.decode()
    assert [int(x) for x in re.findall(r'data-order="(\d+)"', second)] == expected[25:50]
    assert f"26\u201350 of {counts['cancelled']}" in second
    assert 'href="?" rel="prev"' in second, "previous leads to the first page"
    third = re.search(r'href="\?after=(\d+)&amp;trail=0,(\d+)&amp;page=3" rel="next"', second)
    assert third is not None and third.group(2) == link.group(1)
    back = api.get(
        reverse("dashboard"), {"after": third.group(1), "trail": f"0,{link.group(1)}", "page": "3"}
    )
    assert f'href="?after={link.group(1)}&amp;trail=0&amp;page=2" rel="prev"' in back.content.decode()
    assert api.get(reverse("dashboard"), {"trail": "1,x"}).status_code == 400
    assert 'data-status="none"' not in html, "no legend or bar for none while no order lacks a status"
    assert api.get(reverse("dashboard"), {"after": "nope"}).status_code == 400


# --- Limits on web reads -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["api-status-counts", "api-orders", "api-orders-csv"])
def test_live_reads_need_their_own_permission(client, plain_reader, seeded, name, settings):
    client.force_login(plain_reader)
    extra = {} if name == "api-status-counts" else {"status": "cancelled"}
    response = get(client, name, strategy="live", **extra)
    assert response.status_code == 403
    assert "reporting.read_live" in response.json()["error"]
    assert get(client, name, strategy="realtime", **extra).status_code == 200
    settings.REPORTING_DEFAULT_STRATEGY = "live"
    assert get(client, name, **extra).status_code == 403, "the default counts too"
    settings.REPORTING_WEB_LIVE_FOR_ALL = "1"
    assert get(client, name, strategy="live", **extra).status_code == 200


@pytest.mark.django_db(transaction=True)
def test_a_web_read_over_the_statement_timeout_gets_a_json_504(client, reader, settings):
    client.force_login(reader)
    shop_services.orders_seed(orders=50, seed=2, until=EPOCH)
    services.views_refresh()
    settings.REPORTING_WEB_STATEMENT_TIMEOUT = "0.2"
    blocker = raw_connect(autocommit=False)
    blocker.execute("LOCK TABLE reporting_example_orderstatus IN ACCESS EXCLUSIVE MODE")
    try:
        response = get(client, "api-status-counts", strategy="live")
        dashboard = client.get(reverse("dashboard"))
    finally:
        blocker.rollback()
        blocker.close()
    assert response.status_code == 504
    assert "REPORTING_WEB_STATEMENT_TIMEOUT" in response.json()["error"]
    assert dashboard.status_code == 503
    # The limit was the request's: the connection is back to no limit.
    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        assert cursor.fetchone() == ("0",)
    assert get(client, "api-status-counts", strategy="live").status_code == 200


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


# --- Health ------------------------------------------------------------------------------------------------


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


def test_a_database_failure_while_authenticating_is_a_json_503(client, reader, seeded, monkeypatch):
    token = services.api_token_create(username="reader", name="t")

    def down(authorization):
        raise OperationalError("connection refused")

    monkeypatch.setattr(services, "api_token_authenticate", down)
    response = client.get(reverse("api-status-counts"), HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 503
    assert response["Content-Type"] == "application/json"


def test_api_token_commands_refuse_odd_input_with_one_line(reader):
    with pytest.raises(CommandError, match="at most 3660 days"):
        call_command("api_token", "create", "reader", "--expires-in-days", "3000000", stdout=StringIO())
    with pytest.raises(CommandError, match="--id, or by its user and --name"):
        call_command("api_token", "revoke", stdout=StringIO())
    assert selectors.api_token_list() == []


# --- Metrics -----------------------------------------------------------------------------------------------


def metric(text: str, name: str, labels: str = "") -> float | None:
    match = re.search(rf"^{re.escape(name + labels)} (\S+)$", text, re.M)
    return float(match.group(1)) if match else None


@pytest.mark.django_db(transaction=True)
def test_metrics_need_their_permission_and_move_with_refreshes(client, reader):
    assert client.get("/metrics").status_code == 401
    client.force_login(reader)
    assert client.get("/metrics").status_code == 403, "reading reports does not mean reading metrics"
    reader.user_permissions.add(Permission.objects.get(codename="view_metrics"))
    client.force_login(get_user_model().objects.get(pk=reader.pk))
    shop_services.orders_seed(orders=40, seed=3, until=EPOCH)
    services.views_refresh()
    get(client, "api-status-counts")
    first = client.get("/metrics")
    assert first.status_code == 200
    assert first["Content-Type"].startswith("text/plain")
    text = first.content.decode()
    assert metric(text, "reporting_database_up") == 1
    assert metric(text, "reporting_changes_pending") == 0
    assert metric(text, "reporting_refresh_lock_held") == 0
    last_success = metric(text, "reporting_last_refresh_success_timestamp_seconds")
    assert last_success is not None
    assert metric(text, "reporting_state_age_seconds") is not None
    requests = metric(
        text, "reporting_api_request_duration_seconds_count", '{endpoint="status_counts",status="200"}'
    )
    assert requests is not None and requests >= 1

    shop_services.order_status_record(order_id=1, status="cancelled")
    assert metric(client.get("/metrics").content.decode(), "reporting_changes_pending") == 1
    services.views_refresh()
    after = client.get("/metrics").content.decode()
    assert metric(after, "reporting_changes_pending") == 0
    moved = metric(after, "reporting_last_refresh_success_timestamp_seconds")
    assert moved is not None and moved > last_success


# As in a project that installed the app without the metrics extra.
WITHOUT_PROMETHEUS = """
import json, socket, sys
sys.modules["prometheus_client"] = None  # import prometheus_client now raises ImportError
import django
django.setup()
from django.contrib.auth import get_user_model
from django.test import Client
from django.test.utils import setup_test_environment
from reporting import metrics
from scheduler import runner  # counts its jobs through metrics

setup_test_environment()
client = Client()
client.force_login(get_user_model().objects.create_superuser("admin", password="an admin password"))
answers = {path: client.get(path) for path in ("/metrics", "/api/status-counts")}
with socket.socket() as sock:
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
print(json.dumps({
    "metrics": [answers["/metrics"].status_code, answers["/metrics"].json()],
    "counts": answers["/api/status-counts"].status_code,
    "served": metrics.serve("127.0.0.1", port),
}))
"""


@pytest.mark.django_db(transaction=True)
def test_without_the_metrics_extra_metrics_answer_501_with_the_pip_line_and_the_rest_works():
    import json
    import subprocess
    import sys

    from tests.helpers import subprocess_env

    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_PROMETHEUS],
        env=subprocess_env() | {"DJANGO_SETTINGS_MODULE": "demo_project.settings"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout.splitlines()[-1])
    status, body = answer["metrics"]
    assert status == 501, body
    assert "pip install 'order-status-reporting[metrics]'" in body["error"], body
    assert answer["counts"] == 200, "the API works without metrics"
    assert answer["served"] is False, "the scheduler's metrics port stays closed"


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


# --- One order ---------------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_an_order_with_its_history_and_its_status_by_every_strategy(client, reader):
    client.force_login(reader)
    at = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)
    order = Order.objects.create(created=at)
    pending = OrderStatus.objects.create(order=order, created=at, status="pending")
    complete = OrderStatus.objects.create(order=order, created=at + dt.timedelta(hours=2), status="complete")
    services.views_refresh()
    # After the refresh: a refund, a tie at the same time that wins by id, and a backfill.
    refund = OrderStatus.objects.create(order=order, created=at + dt.timedelta(days=1), status="cancelled")
    tie = OrderStatus.objects.create(order=order, created=at + dt.timedelta(days=1), status="complete")
    backfill = OrderStatus.objects.create(order=order, created=at + dt.timedelta(hours=1), status="cancelled")

    body = client.get(reverse("api-order", args=[order.pk])).json()
    assert [h["status_id"] for h in body["history"]] == [
        pending.pk,
        backfill.pk,
        complete.pk,
        refund.pk,
        tie.pk,
    ]
    assert [h["duration_seconds"] for h in body["history"][:4]] == [3600, 3600, 22 * 3600, 0]
    assert [h["latest"] for h in body["history"]] == [False, False, False, False, True]
    assert body["status"]["live"]["status_id"] == tie.pk
    assert body["status"]["realtime"]["status_id"] == tie.pk, "exact: the changes since the refresh"
    assert body["status"]["snapshot"]["status_id"] == complete.pk, "as of the refresh"
    assert body["status"]["snapshot"]["freshness"]["changes_since_view"] == 3

    page = client.get(reverse("order", args=[order.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    for status_id in (pending.pk, backfill.pk, complete.pk, refund.pk, tie.pk):
        assert f'data-status-id="{status_id}"' in html
    assert 'data-strategy="realtime" data-status="complete"' in html
    assert 'data-strategy="snapshot" data-status="complete"' in html

    bare = Order.objects.create(created=at)
    assert client.get(reverse("api-order", args=[bare.pk])).json()["status"]["live"]["status"] is None
    assert "No status rows" in client.get(reverse("order", args=[bare.pk])).content.decode()


def test_an_order_with_a_huge_history_shows_its_latest_rows_and_says_how_many_are_left_out(api, settings):
    """300,000 status rows made the API answer 44 MB and the page 98 MB of HTML."""
    (order_id,) = orders_create(1)
    with connection.cursor() as cursor:
        # pending for 100 rows, complete once, then cancelled for the rest: the final
        # run is far longer than the rows shown, and status_since is its first row.
        cursor.execute(
            "INSERT INTO reporting_example_orderstatus (order_id, created, status) "
            "SELECT %s, %s + i * interval '1 second', "
            "CASE WHEN i < 100 THEN 'pending' WHEN i = 100 THEN 'complete' ELSE 'cancelled' END "
            "FROM generate_series(0, 299999) AS i",
            [order_id, EPOCH],
        )
        cursor.execute(
            "SELECT id FROM reporting_example_orderstatus WHERE order_id = %s ORDER BY created DESC, id DESC",
            [order_id],
        )
        ids = [row[0] for row in cursor.fetchall()][::-1]
    since = (EPOCH + dt.timedelta(seconds=101)).isoformat()

    response = api.get(f"/api/orders/{order_id}")
    assert response.status_code == 200
    assert len(response.content) < 1_000_000
    body = response.json()
    assert (body["history_count"], body["history_truncated"], len(body["history"])) == (300_000, True, 1000)
    assert body["created"] == EPOCH.isoformat(), "the order's creation, not its latest row's"
    assert [h["status_id"] for h in body["history"]] == ids[-1000:], "the latest rows, oldest first"
    assert [h["latest"] for h in body["history"]] == [False] * 999 + [True]
    assert body["history"][0]["duration_seconds"] == 1
    assert body["status"]["live"]["status_id"] == ids[-1]
    assert body["status"]["live"]["status_since"] == since, "from the whole final run, not the rows shown"
    assert body["status"]["realtime"]["status_since"] == since

    small = api.get(f"/api/orders/{order_id}", {"limit": 3}).json()
    assert [h["status_id"] for h in small["history"]] == ids[-3:]
    assert (small["history_count"], small["history_truncated"]) == (300_000, True)
    for bad in ("0", "10001", "-1", "1.5", "abc", "\u00b2"):
        refused = api.get(f"/api/orders/{order_id}", {"limit": bad})
        assert refused.status_code == 400, bad
        assert "limit" in refused.json()["error"] and "1 to 10000" in refused.json()["error"]

    settings.REPORTING_ORDER_HISTORY_ROWS = 50
    page = api.get(reverse("order", args=[order_id]))
    assert page.status_code == 200
    html = page.content.decode()
    assert len(html) < 200_000
    assert re.findall(r'data-status-id="(\d+)"', html) == [str(i) for i in ids[-50:]]
    assert "The latest 50 of 300,000 rows; 299,950 earlier rows not shown." in html

    (short,) = orders_create(1)
    statuses_create([(short, EPOCH, "pending"), (short, EPOCH, "complete")])
    body = api.get(f"/api/orders/{short}").json()
    assert (body["history_count"], body["history_truncated"], len(body["history"])) == (2, False, 2)
    assert "earlier row" not in api.get(reverse("order", args=[short])).content.decode()


@pytest.mark.parametrize("order_id", ["987654321", "9" * 30, "0"])
def test_an_unknown_order_is_a_404(api, seeded, order_id):
    response = api.get(f"/api/orders/{order_id}")
    assert response.status_code == 404
    assert response.json()["error"].startswith("unknown order")
    assert api.get(f"/orders/{order_id}").status_code == 404


def test_the_dashboard_links_every_listed_order_to_its_page(api, seeded):
    html = api.get(reverse("dashboard")).content.decode()
    first = next(iter(selectors.order_iter_by_status(status="cancelled", strategy="live")))
    assert f'href="/orders/{first.order_id}"' in html


def test_the_dashboard_filters_by_status_and_days_in_its_url(api, seeded):
    live_pending = [r.order_id for r in selectors.order_iter_by_status(status="pending", strategy="live")]
    html = api.get(reverse("dashboard"), {"status": "pending"}).content.decode()
    assert [int(x) for x in re.findall(r'data-order="(\d+)"', html)] == live_pending[:25]
    assert "Pending orders, most recent first" in html

    first, last = dt.date(2025, 12, 1), dt.date(2025, 12, 20)
    ranged = api.get(reverse("dashboard"), {"from": first.isoformat(), "to": last.isoformat()})
    assert ranged.status_code == 200
    body = ranged.content.decode()
    # Counts: the orders created on those days, by latest status, as the live history says.
    daily = selectors.order_daily_counts(days=20, strategy="live", until=last)
    expected = {name: sum(daily.series[name]) for name in ("pending", "complete", "cancelled")}
    for name, n in expected.items():
        assert f'data-status="{name}" data-count="{n}"' in body, name
    assert len(re.findall(r'class="col[^"]*" data-day=', body)) == 20
    listed = [int(x) for x in re.findall(r'data-order="(\d+)"', body)]
    became = {
        r.order_id
        for r in selectors.order_iter_by_status(status="cancelled", strategy="live")
        if first <= r.status_created.astimezone(dt.UTC).date() <= last
    }
    assert listed and set(listed) <= became, "the list keeps to the days"
    next_link = re.search(r'href="(\?[^"]*)" rel="next"', body)
    if next_link:
        assert "from=2025-12-01&amp;to=2025-12-20" in next_link.group(1), "the pager keeps the filters"

    for params in (
        {"status": "failed"},
        {"from": "2025-12-01"},
        {"from": "2025-12-20", "to": "2025-12-01"},
        {"from": "2025-13-01", "to": "2025-12-20"},
        {"from": "2025-12-01", "to": "2027-12-31"},
        {"from": "\u00b2025-12-01", "to": "2025-12-20"},
    ):
        response = api.get(reverse("dashboard"), params)
        assert response.status_code == 400, params
        assert "invalid" in response.content.decode()


def test_the_dashboard_pager_goes_on_past_its_trail_and_refuses_odd_ends(api, seeded):
    rows = list(selectors.order_iter_by_status(status="cancelled", strategy="live"))
    after = rows[24].status_id
    long_trail = ",".join(["0"] + [str(1000 + i) for i in range(199)])  # 200 pages behind
    html = api.get(
        reverse("dashboard"), {"after": after, "trail": long_trail, "page": "201"}
    ).content.decode()
    assert "5,001\u20135,025" in html, "the position comes from the page number"
    link = re.search(r'href="\?after=\d+&amp;trail=([\d,]+)&amp;page=202" rel="next"', html)
    assert link is not None, "a next page after 200"
    assert len(link.group(1).split(",")) == 200, "the trail keeps the last 200 pages"
    for params in (
        {"from": "9999-12-31", "to": "9999-12-31"},
        {"from": "0001-01-01", "to": "0001-01-02"},
        {"from": "2025-12-01", "to": "2025-12-02", "after": str(rows[0].status_id)},
    ):
        assert api.get(reverse("dashboard"), params).status_code == 400, params


# --- Stuck in pending ------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_orders_stuck_in_pending_are_counted_exactly(client, reader):
    client.force_login(reader)
    now = timezone.now()
    ago = lambda hours: now - dt.timedelta(hours=hours)  # noqa: E731

    def order(*history):
        o = Order.objects.create(created=history[0][0])
        return o, [OrderStatus.objects.create(order=o, created=at, status=s) for at, s in history]

    stuck_long, _ = order((ago(72), "pending"))
    stuck_tie, _ = order((ago(48), "complete"))
    OrderStatus.objects.create(
        order=stuck_tie, created=ago(48), status="pending"
    )  # same time, higher id: latest
    recent, _ = order((ago(2), "pending"))
    paid, _ = order((ago(72), "pending"), (ago(70), "complete"))
    backfilled, _ = order((ago(5), "complete"))
    OrderStatus.objects.create(order=backfilled, created=ago(96), status="pending")  # older: not the latest
    Order.objects.create(created=ago(100))  # no status at all: not pending
    # Pending for 60 hours; a second pending row an hour ago does not make it newly pending.
    repeated, _ = order((ago(60), "pending"), (ago(1), "pending"))
    services.views_refresh()

    stuck = selectors.orders_stuck_pending(older_than=dt.timedelta(hours=24))
    assert stuck.count == 3
    assert [r.order_id for r in stuck.oldest] == [stuck_long.pk, repeated.pk, stuck_tie.pk], (
        "the longest stuck first, by when they entered pending"
    )
    assert selectors.orders_stuck_pending(older_than=dt.timedelta(hours=1)).count == 4

    # After the refresh, exact: one is paid, another cancelled and pending again long ago.
    shop_services.order_status_record(order_id=stuck_long.pk, status="complete")
    OrderStatus.objects.create(order=paid, created=ago(30), status="pending")
    body = client.get(reverse("api-orders-stuck"), {"hours": "24"}).json()
    oldest = [o["order_id"] for o in body["oldest"]]
    assert (body["count"], oldest) == (3, [repeated.pk, stuck_tie.pk, paid.pk])
    assert dt.datetime.fromisoformat(body["oldest"][0]["pending_since"]) == ago(60), "when it entered pending"
    assert body["freshness"]["strategy"] == "realtime"
    assert client.get(reverse("api-orders-stuck"), {"hours": "0"}).status_code == 400
    assert client.get(reverse("api-orders-stuck"), {"hours": "\u00b2"}).status_code == 400
    html = client.get(reverse("dashboard")).content.decode()
    assert 'id="stuck" class="wide" data-count="3"' in html
    assert recent.pk not in (o["order_id"] for o in body["oldest"])


@pytest.mark.django_db(transaction=True)
def test_status_analytics_answer_exactly_on_the_api_and_the_dashboard(client, reader):
    client.force_login(reader)
    now = timezone.now()
    ago = lambda hours: now - dt.timedelta(hours=hours)  # noqa: E731
    paid, refunded, failed = (Order.objects.create(created=ago(10)) for _ in range(3))
    for order, history in (
        (paid, [(10, "pending"), (9, "complete")]),
        (refunded, [(10, "pending"), (8, "complete"), (1, "cancelled")]),
        (failed, [(10, "pending")]),
    ):
        for hours, status in history:
            OrderStatus.objects.create(order=order, created=ago(hours), status=status)
    services.views_refresh()
    shop_services.order_status_record(order_id=failed.pk, status="cancelled")  # after the refresh: realtime

    rows = all_status_rows()
    expected = {kind: 0 for kind in selectors.transition_kinds()}
    for (_, before, after), n in brute_force_transitions(rows).items():
        expected[(before, after)] += n
    body = client.get(reverse("api-transitions-daily")).json()
    assert len(body["days"]) == 30 and body["freshness"]["strategy"] == "realtime"
    assert {(t["from"], t["to"]): t["total"] for t in body["transitions"]} == expected
    assert expected[("pending", "cancelled")] == 1, "the change after the refresh counts"
    today = now.astimezone(dt.UTC).date().isoformat()
    one_day = client.get(reverse("api-transitions-daily"), {"from": today, "to": today}).json()
    assert one_day["days"] == [today]

    times = client.get(reverse("api-transition-times"), {"weeks": "2"}).json()
    assert len(times["weeks"]) == 2
    week = now.astimezone(dt.UTC).date()
    week -= dt.timedelta(days=week.weekday())
    expected_times = brute_force_transition_times(rows)
    for status in ("complete", "cancelled"):
        this_week = times[status][-1]
        n, median, p90 = expected_times.get((week, status), (0, None, None))
        assert this_week["transitions"] == n
        # PostgreSQL and Python round an interpolated half microsecond differently: 1 µs
        # apart at most, which in float seconds can come out a hair over 1e-6.
        for key, value in (("median_seconds", median), ("p90_seconds", p90)):
            if value is None:
                assert this_week[key] is None
            else:
                assert this_week[key] == pytest.approx(value.total_seconds(), abs=1.5e-6)

    for name, params in (
        ("api-transitions-daily", {"from": today}),
        ("api-transitions-daily", {"from": today, "to": "2000-01-01"}),
        ("api-transitions-daily", {"from": "2020-01-01", "to": "2022-01-01"}),
        ("api-transitions-daily", {"to": "yesterday", "from": today}),
        ("api-transitions-daily", {"days": "7"}),
        ("api-transition-times", {"weeks": "0"}),
        ("api-transition-times", {"weeks": "521"}),
        ("api-transition-times", {"weeks": "\u0663"}),
        ("api-transition-times", {"strategy": "fast"}),
    ):
        response = client.get(reverse(name), params)
        assert response.status_code == 400, (name, params)
        assert response.json()["error"], (name, params)

    html = client.get(reverse("dashboard")).content.decode()
    panel = html[html.index('id="transitions"') : html.index('id="times"')]
    paid_row = re.search(r'data-transition="pending-complete">.*?<td class="num">(\d+)</td>', panel)
    assert paid_row is not None and int(paid_row.group(1)) == expected[("pending", "complete")]
    assert f'data-week="{week.isoformat()}"' in html


@pytest.mark.django_db(transaction=True)
def test_since_on_the_dashboard_the_order_page_and_the_api_is_when_the_status_began(client, reader):
    """A second cancelled row moves the latest row's time, not when the order was cancelled."""
    client.force_login(reader)
    now = timezone.now().replace(microsecond=0)
    cancelled_at, again_at = now - dt.timedelta(days=20), now - dt.timedelta(hours=1)
    order = Order.objects.create(created=cancelled_at - dt.timedelta(hours=1))
    for at, status in ((cancelled_at - dt.timedelta(hours=1), "pending"), (cancelled_at, "cancelled")):
        OrderStatus.objects.create(order=order, created=at, status=status)
    services.views_refresh()
    OrderStatus.objects.create(order=order, created=again_at, status="cancelled")
    assert services.overlay_fold().outcome == "ok"
    # Pages write a date and its time in two unbreakable spans (they wrap at the space on phones).
    shown, latest = (
        f'{at:%Y-%m-%d}</span> <span class="nw">{at:%H:%M:%S}' for at in (cancelled_at, again_at)
    )

    html = client.get(reverse("dashboard"), {"status": "cancelled"}).content.decode()
    row = html[html.index(f'data-order="{order.pk}"') :].split("</tr>", 1)[0]
    assert shown in row and latest not in row, row
    page = client.get(reverse("order", args=[order.pk])).content.decode()
    now_table = page[page.index('id="now"') :].split("</table>", 1)[0]
    assert now_table.count(shown) == 3, "every strategy says since when"
    assert latest not in now_table
    body = client.get(reverse("api-orders"), {"status": "cancelled"}).json()["orders"]
    assert [(o["status_created"], o["status_since"]) for o in body] == [
        (again_at.isoformat(), cancelled_at.isoformat())
    ]
    detail = client.get(reverse("api-order", args=[order.pk])).json()["status"]
    assert {s["status_since"] for s in detail.values()} == {cancelled_at.isoformat()}
    assert detail["snapshot"]["status_created"] == cancelled_at.isoformat(), "as of the refresh"
